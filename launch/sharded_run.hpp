#pragma once
// What every command that runs the sharded model sets up from its flags: the torus (--torus), the
// collectives with the --collectives algorithm, and the kernels' --matmul backend.
#include <memory>
#include <string>

#include "collectives/collectives.hpp"
#include "launch/command.hpp"
#include "runtime/layer_shards.hpp"

namespace tori::launch {

struct ShardedRun {
  collectives::Torus torus;
  std::unique_ptr<collectives::Collectives> coll;  // refers to torus: keep ShardedRun in place
  runtime::ShardOptions shard;

  ShardedRun(const std::string& torus_flag, const GlobalOptions& g);
};

}  // namespace tori::launch
