#pragma once
// `tori bench collectives`: times every collective × algorithm × axis set × size on the torus the
// ranks form, and prints one JSON line per measurement (or a table). Run under mpirun.
//
// bytes is the per-rank buffer a collective is measured by (NCCL's convention): all_gather's
// output, reduce_scatter's input, all_reduce's and all_to_all's buffer, ppermute's tensor (rounded
// down so the group size divides it). gbps = bytes / median_s / 1e9 (algorithm bandwidth);
// bus_gbps scales it by the fraction a ring must move ((G-1)/G, 2(G-1)/G for all_reduce), which
// is comparable across group sizes. median_s is the median over repeats of the slowest rank's
// time, each repeat starting from a barrier; the algorithms are interleaved (repeat i runs each
// algorithm once) so that load from other processes does not favour one of them. Inputs and outputs are allocated once per case and
// reused (the collectives' `out` argument), as a steady-state decode loop would; the first-touch
// page faults of fresh 64 MiB outputs would otherwise dominate the large sizes. memcpy_gbps, one core copying a buffer of the largest
// size, is the machine's limit for shared-memory transfers beside every record.
#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

#include "collectives/link_model.hpp"

namespace tori::bench {

struct CollectivesBenchOptions {
  std::string torus;                 // --torus: "" / auto or XxYxZ
  std::vector<std::string> sizes;    // explicit sizes ("1MiB", "4096"); empty: the sweep below
  std::string min_size = "4KiB";
  std::string max_size = "64MiB";
  int factor = 4;                    // sweep min_size, ·factor, ... up to max_size
  std::vector<std::string> ops;      // all_gather, ... (empty: all five)
  std::vector<std::string> algos;    // mpi, ring, bidir (empty: all three)
  std::vector<std::string> axes;     // x, yz, ... (empty: every set with >1 rank, distinct groups)
  std::string dtype = "f32";
  int repeats = 0;                   // 0: auto, from 50 at small sizes down to 5 at 64 MiB
  int warmup = 2;
  size_t chunk_bytes = 0;            // reduction pieces; 0: CollectivesOptions default
  long long message_bytes = -1;      // data movement messages; -1: default, 0: whole transfers
  collectives::LinkModel link{};     // --link-gbps / --link-latency-us: emulated links (off by default)
  bool json = false;
  int threads = 1;                   // recorded in each record
};

// Parses "4096", "4k", "4KiB", "1M", "1MiB", "2G" (binary units); throws tori::InputError.
size_t parse_size(const std::string& s, const std::string& what);

int run_collectives_bench(const CollectivesBenchOptions& opt, MPI_Comm world);

}  // namespace tori::bench
