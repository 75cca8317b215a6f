#pragma once
// Attention patterns as values, and their split into coarse and fine work (docs/multigrain.md).
//
// A pattern says which cached positions k a query at position q may see. Causality is always kept
// (k <= q); on top of it:
//   causal         every k <= q
//   sliding_window the w most recent keys, itself included: q - w < k <= q
//   block_random   BigBird-style: the sliding window (w may be 0 here: none), plus `random_blocks`
//                  key blocks of `block` positions drawn per query block from a seeded hash
//   global tokens  (any kind) the first `global_first` positions and the listed `global_positions`
//                  see every earlier key and are seen by every later query
//
// split_pattern cuts one sequence's attention — Lq new queries at positions offset .. offset+Lq-1
// against keys 0 .. Lk-1 (Lk = offset + Lq) — into query blocks of kSplitQueryBlock tokens, and
// per query block into
//   coarse runs  key ranges [k0, k1) (k0 on a kKvBlock boundary) that EVERY query of the block may
//                see entirely: dense tiles, run as small GEMMs (unmasked), or, for the padded
//                single-grain split, every key block touched, masked by the pattern;
//   fine pieces  what the runs leave of each query's row (band edges, global columns, global
//                rows), as layers: layer j holds at most one interval [lo, hi) per query row.
// A split depends only on (pattern, Lq, Lk, offset, grain), not on heads or values: cached_split
// computes it once and reuses it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tori::kernels {

enum class PatternKind : uint8_t { causal, sliding_window, block_random };

struct AttentionPattern {
  PatternKind kind = PatternKind::causal;
  int64_t window = 0;                     // sliding_window: >= 1; block_random: >= 0 (0 = no band)
  int64_t global_first = 0;               // positions 0 .. global_first-1 are global
  std::vector<int64_t> global_positions;  // further global positions (any order, duplicates allowed)
  int64_t block = 64;                     // block_random: positions per query/key block
  int64_t random_blocks = 0;              // block_random: key blocks drawn per query block
  uint64_t seed = 0;                      // block_random: the draw

  static AttentionPattern causal();
  static AttentionPattern sliding_window(int64_t window, int64_t global_first = 0);
  static AttentionPattern block_random(int64_t block, int64_t random_blocks, uint64_t seed,
                                       int64_t window = 0, int64_t global_first = 0);

  // Throws tori::InputError naming the field ("window", "global_first", "global_positions",
  // "block", "random_blocks") and the allowed values.
  void validate() const;
  bool is_global(int64_t pos) const;
  // May the query at position q see the key at position k?
  bool allowed(int64_t q, int64_t k) const;
  // Key intervals [a, b) the query at q sees, sorted, disjoint, within [0, min(q + 1, lk)).
  std::vector<std::pair<int64_t, int64_t>> row_spans(int64_t q, int64_t lk) const;
  // (query, key) pairs allowed for lq queries at positions offset .. offset+lq-1 (keys up to each
  // query: a step of attention with a cached prefix of `offset`); closed form for causal and
  // sliding windows without listed globals (the cost model's), row by row otherwise.
  double allowed_pairs(int64_t offset, int64_t lq) const;
  // e.g. "sliding_window(w=512, global_first=4)"; also the cache key.
  std::string describe() const;
};

// Tokens per query block of a split. 64 = kKvBlock: a band of width w then leaves about one key
// block at each edge per query block to the fine kernel (the rest is coarse).
constexpr int64_t kSplitQueryBlock = 64;
// Longest coarse run (keys): bounds the GEMM operands of one work item ([rows, 512] scores, a
// [D, 512] copy of K^T) and gives decode several items per row to spread over threads.
constexpr int64_t kMaxRunKeys = 512;

// multi:  coarse runs unmasked + fine pieces (multigrain)
// coarse: every key block a query block touches, as masked ("padded") runs; no fine pieces
// fine:   no runs; every allowed interval a fine piece
// dense:  every causal key block as masked runs (dense attention under the pattern's mask)
enum class Grain : uint8_t { multi, coarse, fine, dense };
std::string grain_name(Grain g);

struct CoarseRun {
  int64_t k0, k1;  // keys; k0 % kKvBlock == 0
  bool masked;     // apply the pattern inside the run (coarse/dense grains)
};
struct FineLayer {
  int64_t t0, t1;  // keys covered (t0 % kKvBlock == 0), the hull of the layer's intervals
  int64_t first;   // offset of this layer's [lo, hi) pairs in AttentionSplit::bounds (one pair per row)
};
struct QueryBlock {
  int64_t i0, i1;                     // query rows (0-based in the new tokens)
  std::vector<CoarseRun> runs;
  std::vector<FineLayer> layers;
  int64_t row_first;                  // offset of its rows' spans in AttentionSplit::row_span_first
};

struct AttentionSplit {
  int64_t lq = 0, lk = 0, offset = 0;
  Grain grain = Grain::multi;
  std::vector<QueryBlock> blocks;
  std::vector<int64_t> bounds;  // fine layers: per row lo, hi (lo == hi: nothing in this layer)
  // The pattern per row (masks of masked runs): row r's spans are
  // spans[row_span_first[r] .. row_span_first[r + 1]).
  std::vector<int64_t> row_span_first;
  std::vector<std::pair<int64_t, int64_t>> spans;
  // Work, in (query, key) pairs: allowed by the pattern; computed by runs (padding included); by
  // fine pieces.
  int64_t allowed_pairs = 0, coarse_pairs = 0, fine_pairs = 0;
};

AttentionSplit split_pattern(const AttentionPattern& p, int64_t lq, int64_t lk, int64_t offset,
                             Grain grain);
// The same, computed once per (pattern, lq, lk, offset, grain) and kept (thread-safe; the cache
// holds at most 256 splits and is emptied when full).
std::shared_ptr<const AttentionSplit> cached_split(const AttentionPattern& p, int64_t lq, int64_t lk,
                                                   int64_t offset, Grain grain);
size_t cached_split_count();

}  // namespace tori::kernels
