#pragma once
// Reads a JSON file (config.json, tokenizer.json, an index): InputError naming the path when it
// cannot be read or is not JSON.
#include <nlohmann/json.hpp>

#include <string>

namespace tori::models {

nlohmann::json read_json_file(const std::string& path);

}  // namespace tori::models
