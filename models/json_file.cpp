#include "models/json_file.hpp"

#include <fstream>

#include "kernels/error.hpp"

namespace tori::models {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read '" + path + "'");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
  return j;
}

}  // namespace tori::models
