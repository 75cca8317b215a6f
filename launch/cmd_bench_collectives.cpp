// `tori bench collectives` — registered by the collectives work (issue 3).
#include "launch/command.hpp"

namespace tori::launch {
void add_bench_collectives_command(CLI::App&, Commands&) {}
}  // namespace tori::launch
