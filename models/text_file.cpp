#include "models/text_file.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "kernels/error.hpp"

namespace tori::models {

std::string read_text_file(const std::string& path, const std::string& flag) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw InputError(flag + ": cannot read '" + path + "' (a directory; allowed: a text file)");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(flag + ": cannot read '" + path + "' (allowed: a text file)");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) throw InputError(flag + ": '" + path + "' is empty");
  return text.str();
}

}  // namespace tori::models
