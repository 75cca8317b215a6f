#pragma once
// File helpers shared by tests that write corrupted or exported files: a fresh directory per test
// and process, and whole-file read / write.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace tori::test {

// tests/models/data: the small files the models' tests read.
inline const std::filesystem::path kModelsData = std::filesystem::path(__FILE__).parent_path().parent_path() / "models" / "data";

inline std::filesystem::path temp_dir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("tori_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void spit(const std::filesystem::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

}  // namespace tori::test
