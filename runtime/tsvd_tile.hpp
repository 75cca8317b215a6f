#pragma once
// The default TSVD tile (`tori compress` without --tile): the largest of the candidate tiles
// (256, 192, 128, 96, 64, 48, 32) that divides every compressed matrix and whose tiles every
// layout's shards hold whole, padding included (padded heads and F: padded_weights.hpp), on 1, 2,
// 4 and 8 ranks (the auto torus of each). Found by cutting layer 0 as load_layer_shard cuts it, for
// every valid phase plan and every rank's placement, from a probe source with the model's shapes
// and no weights (its factor reads only check whole tiles), so it agrees with the runtime's
// refusal (layer_shards.cpp shard_factors) by construction. Every layer has layer 0's shapes.
// Not covered: --overlap looped's blocks (cut_einsum_factors refuses those at load) and explicit
// --torus shapes other than the auto ones.
#include <cstdint>
#include <string>
#include <vector>

#include "models/config.hpp"

namespace tori::runtime {

// The rank counts the default tile is checked on.
inline constexpr int kTsvdTileMaxRanks = 8;

// Empty if square tile t cuts no shard of the compressed layer tensors `names` under any valid
// plan on 1, 2, 4 .. max_ranks ranks; else the runtime's refusal for the first shard it cuts
// ("TSVD tile … of tensor '…' does not divide this rank's shard of it … under layout … on torus …").
std::string tsvd_tile_refusal(const models::ModelConfig& c, const std::vector<std::string>& names, int64_t t,
                              int max_ranks = kTsvdTileMaxRanks);

// The largest candidate tile with no refusal; InputError naming --tile, the refusal of the
// smallest candidate dividing every matrix (tensor, shard, layout, torus) and the tiles allowed
// (those dividing every matrix, which run on fewer ranks or other plans) when none has.
int64_t default_tsvd_tile(const models::ModelConfig& c, const std::vector<std::string>& names,
                          int max_ranks = kTsvdTileMaxRanks);

}  // namespace tori::runtime
