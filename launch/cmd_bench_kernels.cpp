// `tori bench kernels` — registered by the kernels work (issue 4).
#include "launch/command.hpp"

namespace tori::launch {
void add_bench_kernels_command(CLI::App&, Commands&) {}
}  // namespace tori::launch
