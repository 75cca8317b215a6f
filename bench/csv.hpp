#pragma once
// CSV lines from JSON records, for the benchmarks that write <out>.csv beside <out>.jsonl (bench
// sweep, bench model): one header of column names, then one line per record with its values in
// that order (strings quoted, numbers and booleans as JSON prints them, a missing key empty).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

}  // namespace tori::bench
