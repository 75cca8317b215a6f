#pragma once
// Reads a text file named by a flag (--text, --calibration, --prompt-file) whole, bytes as they
// are: InputError naming the flag and the path when it cannot be read (missing, unreadable, a
// directory) or is empty.
#include <string>

namespace tori::models {

std::string read_text_file(const std::string& path, const std::string& flag);

}  // namespace tori::models
