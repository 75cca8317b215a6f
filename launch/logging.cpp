#include "launch/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "kernels/error.hpp"

namespace tori::launch {

void setup_logging(int rank, const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("tori-" + std::to_string(rank));
  logger->set_pattern("[%H:%M:%S.%e] [rank " + std::to_string(rank) + "] [%^%l%$] %v");
  spdlog::level::level_enum lvl = rank == 0 ? spdlog::level::info : spdlog::level::warn;
  if (!level.empty()) {
    static const char* names[] = {"trace", "debug", "info", "warn", "error", "off"};
    static const spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug,
                                                       spdlog::level::info,  spdlog::level::warn,
                                                       spdlog::level::err,   spdlog::level::off};
    bool found = false;
    for (int i = 0; i < 6; ++i)
      if (level == names[i]) lvl = levels[i], found = true;
    if (!found)
      throw InputError("--log-level: unknown level '" + level +
                       "' (allowed: trace, debug, info, warn, error, off)");
  }
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
}

}  // namespace tori::launch
