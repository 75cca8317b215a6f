// Attention patterns and their coarse/fine split (see attention_pattern.hpp, docs/multigrain.md).
#include "kernels/attention_pattern.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "kernels/counter_hash.hpp"
#include "kernels/error.hpp"
#include "kernels/kv_cache.hpp"

namespace tori::kernels {

namespace {

using Span = std::pair<int64_t, int64_t>;

// The key block drawn for (query block qb, draw j): one of the causal blocks 0 .. qb.
int64_t random_block(uint64_t seed, int64_t qb, int64_t j) {
  return int64_t(splitmix64(splitmix64(seed) ^ (uint64_t(qb) * 1000003ull + uint64_t(j))) % uint64_t(qb + 1));
}

void merge_spans(std::vector<Span>& s) {
  std::sort(s.begin(), s.end());
  size_t w = 0;
  for (const Span& x : s) {
    if (x.first >= x.second) continue;
    if (w > 0 && x.first <= s[w - 1].second)
      s[w - 1].second = std::max(s[w - 1].second, x.second);
    else
      s[w++] = x;
  }
  s.resize(w);
}

std::vector<Span> intersect(const std::vector<Span>& a, const std::vector<Span>& b) {
  std::vector<Span> r;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const int64_t lo = std::max(a[i].first, b[j].first), hi = std::min(a[i].second, b[j].second);
    if (lo < hi) r.emplace_back(lo, hi);
    (a[i].second < b[j].second) ? ++i : ++j;
  }
  return r;
}

// Appends the key blocks [k0, k1) (k0 block-aligned, k1 <= lk) as runs of at most kMaxRunKeys.
void add_runs(std::vector<CoarseRun>& runs, int64_t k0, int64_t k1, bool masked) {
  for (int64_t a = k0; a < k1; a += kMaxRunKeys) runs.push_back({a, std::min(k1, a + kMaxRunKeys), masked});
}

}  // namespace

AttentionPattern AttentionPattern::causal() { return {}; }

AttentionPattern AttentionPattern::sliding_window(int64_t window, int64_t global_first) {
  AttentionPattern p;
  p.kind = PatternKind::sliding_window;
  p.window = window;
  p.global_first = global_first;
  return p;
}

AttentionPattern AttentionPattern::block_random(int64_t block, int64_t random_blocks, uint64_t seed,
                                                int64_t window, int64_t global_first) {
  AttentionPattern p;
  p.kind = PatternKind::block_random;
  p.block = block;
  p.random_blocks = random_blocks;
  p.seed = seed;
  p.window = window;
  p.global_first = global_first;
  return p;
}

void AttentionPattern::validate() const {
  const std::string what = "attention pattern " + describe() + ": ";
  if (kind != PatternKind::causal && window < 1)
    throw InputError(what + "window = " + std::to_string(window) +
                     ", allowed: an integer >= 1 (the keys a query sees, itself included)");
  if (global_first < 0)
    throw InputError(what + "global_first = " + std::to_string(global_first) + ", allowed: an integer >= 0");
  for (int64_t g : global_positions)
    if (g < 0)
      throw InputError(what + "global_positions holds " + std::to_string(g) + ", allowed: positions >= 0");
  if (kind == PatternKind::block_random) {
    if (block < 1) throw InputError(what + "block = " + std::to_string(block) + ", allowed: an integer >= 1");
    if (random_blocks < 0)
      throw InputError(what + "random_blocks = " + std::to_string(random_blocks) + ", allowed: an integer >= 0");
  }
}

bool AttentionPattern::is_global(int64_t pos) const {
  return pos < global_first || std::find(global_positions.begin(), global_positions.end(), pos) != global_positions.end();
}

bool AttentionPattern::allowed(int64_t q, int64_t k) const {
  if (k < 0 || k > q) return false;
  if (kind == PatternKind::causal || is_global(q) || is_global(k)) return true;
  if (q - k < window) return true;
  if (kind == PatternKind::block_random)
    for (int64_t j = 0; j < random_blocks; ++j)
      if (random_block(seed, q / block, j) == k / block) return true;
  return false;
}

double AttentionPattern::allowed_pairs(int64_t offset, int64_t lq) const {
  if (lq <= 0) return 0;
  const double a = double(offset), b = double(offset + lq);  // queries p in [a, b)
  // sum over p in [lo, hi) of p + 1
  auto ramp = [](double lo, double hi) { return hi > lo ? (hi - lo) * (lo + hi + 1) / 2 : 0.0; };
  if (global_positions.empty() && kind == PatternKind::causal) return ramp(a, b);
  if (global_positions.empty() && kind == PatternKind::sliding_window) {
    // min(p + 1, w) keys of the window, plus the sinks below it: min(g, p - w + 1) when p >= w.
    const double w = double(window), g = double(global_first);
    const double band = ramp(a, std::min(b, w)) + w * std::max(0.0, b - std::max(a, w));
    // p in [w, w + g - 1): p - w + 1 sinks; p >= w + g - 1: g.
    const double lo = std::max(a, w), mid = std::min(b, w + g - 1);
    const double rising = mid > lo ? ramp(lo - w, mid - w) : 0.0;
    const double flat = g * std::max(0.0, b - std::max(a, w + g - 1));
    return band + rising + flat;
  }
  double n = 0;
  for (int64_t p = offset; p < offset + lq; ++p)
    for (auto [k0, k1] : row_spans(p, p + 1)) n += double(k1 - k0);
  return n;
}

std::vector<Span> AttentionPattern::row_spans(int64_t q, int64_t lk) const {
  const int64_t end = std::min(q + 1, lk);
  std::vector<Span> s;
  if (end <= 0) return s;
  if (kind == PatternKind::causal || is_global(q)) return {{0, end}};
  s.emplace_back(std::max<int64_t>(0, q - window + 1), end);
  if (kind == PatternKind::block_random)
    for (int64_t j = 0; j < random_blocks; ++j) {
      const int64_t kb = random_block(seed, q / block, j);
      s.emplace_back(kb * block, std::min(end, (kb + 1) * block));
    }
  s.emplace_back(0, std::min(global_first, end));
  for (int64_t g : global_positions)
    if (g < end) s.emplace_back(g, g + 1);
  merge_spans(s);
  return s;
}

std::string AttentionPattern::describe() const {
  std::string s;
  switch (kind) {
    case PatternKind::causal: s = "causal("; break;
    case PatternKind::sliding_window: s = "sliding_window(w=" + std::to_string(window); break;
    case PatternKind::block_random:
      s = "block_random(w=" + std::to_string(window) + ", block=" + std::to_string(block) +
          ", random_blocks=" + std::to_string(random_blocks) + ", seed=" + std::to_string(seed);
      break;
  }
  auto sep = [&] { return s.back() == '(' ? "" : ", "; };
  if (global_first) s += sep() + std::string("global_first=") + std::to_string(global_first);
  if (!global_positions.empty()) {
    std::vector<int64_t> g = global_positions;
    std::sort(g.begin(), g.end());
    g.erase(std::unique(g.begin(), g.end()), g.end());
    s += sep() + std::string("global_positions=[");
    for (size_t i = 0; i < g.size(); ++i) s += (i ? "," : "") + std::to_string(g[i]);
    s += "]";
  }
  return s + ")";
}

std::string grain_name(Grain g) {
  switch (g) {
    case Grain::multi: return "multigrain";
    case Grain::coarse: return "coarse_only";
    case Grain::fine: return "fine_only";
    case Grain::dense: return "dense_masked";
  }
  return "?";
}

AttentionSplit split_pattern(const AttentionPattern& p, int64_t lq, int64_t lk, int64_t offset, Grain grain) {
  p.validate();
  if (lq < 0 || offset < 0 || lk < offset + lq)
    throw Error("split_pattern: " + std::to_string(lq) + " queries at offset " + std::to_string(offset) +
                " need at least " + std::to_string(offset + lq) + " keys, got " + std::to_string(lk));
  AttentionSplit sp;
  sp.lq = lq;
  sp.lk = lk;
  sp.offset = offset;
  sp.grain = grain;
  sp.row_span_first.reserve(size_t(lq + 1));
  for (int64_t i0 = 0; i0 < lq; i0 += kSplitQueryBlock) {
    QueryBlock qb;
    qb.i0 = i0;
    qb.i1 = std::min(lq, i0 + kSplitQueryBlock);
    qb.row_first = int64_t(sp.row_span_first.size());
    const int64_t rows = qb.i1 - qb.i0;
    std::vector<std::vector<Span>> row(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      row[size_t(r)] = p.row_spans(offset + qb.i0 + r, lk);
      sp.row_span_first.push_back(int64_t(sp.spans.size()));
      for (const Span& s : row[size_t(r)]) {
        sp.spans.push_back(s);
        sp.allowed_pairs += s.second - s.first;
      }
    }
    const int64_t row_end = std::min(lk, offset + qb.i1);  // keys the block's last row may see
    if (grain == Grain::dense) {
      add_runs(qb.runs, 0, row_end, true);
    } else if (grain == Grain::coarse) {
      std::vector<Span> touched;  // key blocks any row touches
      for (const auto& rs : row)
        for (const Span& s : rs) touched.emplace_back(s.first / kKvBlock * kKvBlock, std::min(lk, (s.second + kKvBlock - 1) / kKvBlock * kKvBlock));
      merge_spans(touched);
      for (const Span& s : touched) add_runs(qb.runs, s.first, s.second, true);
    } else if (grain == Grain::multi) {
      std::vector<Span> common = row[0];  // keys every row of the block sees
      for (int64_t r = 1; r < rows && !common.empty(); ++r) common = intersect(common, row[size_t(r)]);
      for (const Span& s : common) {
        // whole key blocks [k, min(k + 64, lk)) inside s
        const int64_t k0 = (s.first + kKvBlock - 1) / kKvBlock * kKvBlock;
        int64_t k1 = k0;
        while (k1 < s.second && std::min(k1 + kKvBlock, lk) <= s.second) k1 = std::min(k1 + kKvBlock, lk);
        if (k1 > k0) add_runs(qb.runs, k0, k1, false);
      }
    }
    // Fine pieces: each row's spans minus the unmasked runs, layered by (gap between runs, ordinal).
    if (grain == Grain::multi || grain == Grain::fine) {
      std::map<std::pair<size_t, size_t>, std::vector<Span>> layers;  // (gap, ordinal) -> per row
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<size_t> count(qb.runs.size() + 1, 0);
        for (Span s : row[size_t(r)]) {
          size_t gap = 0;
          for (const CoarseRun& run : qb.runs) {  // runs sorted, disjoint
            if (s.first >= s.second) break;
            if (run.k1 <= s.first) {
              ++gap;
              continue;
            }
            if (run.k0 >= s.second) break;
            if (s.first < run.k0) {
              auto& l = layers[{gap, count[gap]++}];
              l.resize(size_t(rows), {0, 0});
              l[size_t(r)] = {s.first, run.k0};
              sp.fine_pairs += run.k0 - s.first;
            }
            s.first = std::max(s.first, run.k1);
            ++gap;
          }
          if (s.first < s.second) {
            auto& l = layers[{gap, count[gap]++}];
            l.resize(size_t(rows), {0, 0});
            l[size_t(r)] = s;
            sp.fine_pairs += s.second - s.first;
          }
        }
      }
      for (const auto& [key, per_row] : layers) {
        FineLayer fl{lk, 0, int64_t(sp.bounds.size())};
        for (const Span& s : per_row) {
          sp.bounds.push_back(s.first);
          sp.bounds.push_back(s.second);
          if (s.first < s.second) {
            fl.t0 = std::min(fl.t0, s.first / kKvBlock * kKvBlock);
            fl.t1 = std::max(fl.t1, s.second);
          }
        }
        qb.layers.push_back(fl);
      }
    }
    for (const CoarseRun& run : qb.runs) sp.coarse_pairs += (run.k1 - run.k0) * rows;
    sp.blocks.push_back(std::move(qb));
  }
  sp.row_span_first.push_back(int64_t(sp.spans.size()));
  return sp;
}

namespace {
std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<std::string, std::shared_ptr<const AttentionSplit>>& split_cache() {
  static std::unordered_map<std::string, std::shared_ptr<const AttentionSplit>> c;
  return c;
}
constexpr size_t kMaxCachedSplits = 256;
}  // namespace

std::shared_ptr<const AttentionSplit> cached_split(const AttentionPattern& p, int64_t lq, int64_t lk,
                                                   int64_t offset, Grain grain) {
  const std::string key = p.describe() + "|" + std::to_string(lq) + "|" + std::to_string(lk) + "|" +
                          std::to_string(offset) + "|" + grain_name(grain);
  {
    std::lock_guard<std::mutex> lock(cache_mutex());
    auto it = split_cache().find(key);
    if (it != split_cache().end()) return it->second;
  }
  auto sp = std::make_shared<const AttentionSplit>(split_pattern(p, lq, lk, offset, grain));
  std::lock_guard<std::mutex> lock(cache_mutex());
  if (split_cache().size() >= kMaxCachedSplits) split_cache().clear();
  split_cache().emplace(key, sp);
  return sp;
}

size_t cached_split_count() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  return split_cache().size();
}

}  // namespace tori::kernels
