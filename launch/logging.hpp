#pragma once
// spdlog set-up: every line carries the rank; rank 0 logs at info, other ranks at warn, unless
// --log-level says otherwise. Logs go to stderr; results go to stdout.
#include <string>

namespace tori::launch {

// level: "" (default policy), or trace|debug|info|warn|error|off. Throws InputError otherwise.
void setup_logging(int rank, const std::string& level);

}  // namespace tori::launch
