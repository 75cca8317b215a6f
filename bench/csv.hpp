#pragma once
// CSV lines from JSON records, for the benchmarks that write <out>.csv beside <out>.jsonl (bench
// sweep, bench model): one header of column names, then one line per record with its values in
// that order (strings quoted, numbers and booleans as JSON prints them, a missing key empty).
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/error.hpp"

namespace tori::bench {

inline std::string join(const std::vector<std::string>& v, char sep) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

inline std::string csv_cell(const nlohmann::json& v) {
  if (v.is_null()) return "";
  if (!v.is_string()) return v.dump();
  std::string s(1, '"');
  for (char c : v.get<std::string>()) s += c == '"' ? std::string("\"\"") : std::string(1, c);
  s += '"';
  return s;
}

inline std::string csv_line(const nlohmann::json& record, const std::vector<std::string>& columns) {
  std::vector<std::string> cells;
  for (const auto& k : columns) cells.push_back(csv_cell(record.contains(k) ? record[k] : nlohmann::json()));
  return join(cells, ',');
}

// <out>.jsonl and <out>.csv of a benchmark's records (nothing when `out` is empty): the CSV starts
// with its header; each write() appends a record to both and flushes (a long run keeps what it has).
class RecordFiles {
 public:
  RecordFiles(const std::string& out, std::vector<std::string> columns) : columns_(std::move(columns)) {
    if (out.empty()) return;
    jsonl_.open(out + ".jsonl");
    csv_.open(out + ".csv");
    if (!jsonl_ || !csv_) throw InputError("--out: cannot write '" + out + ".jsonl' / '.csv'");
    csv_ << join(columns_, ',') << "\n";
  }
  // csv_row false: the JSON lines only (a summary record that has none of the columns).
  void write(const nlohmann::json& record, bool csv_row = true) {
    if (!jsonl_.is_open()) return;
    jsonl_ << record.dump() << "\n" << std::flush;
    if (csv_row) csv_ << csv_line(record, columns_) << "\n" << std::flush;
  }
  void close() { jsonl_.close(), csv_.close(); }

 private:
  std::vector<std::string> columns_;
  std::ofstream jsonl_, csv_;
};

}  // namespace tori::bench
