#include "runtime/attention_kernel.hpp"

#include <algorithm>

#include "kernels/attention.hpp"
#include "kernels/error.hpp"
#include "kernels/multigrain_attention.hpp"

namespace tori::runtime {

namespace {

struct Named {
  AttentionKernel kernel;
  const char* name;
};
constexpr Named kNames[] = {{AttentionKernel::automatic, "auto"},
                            {AttentionKernel::multigrain, "multigrain"},
                            {AttentionKernel::coarse, "coarse"},
                            {AttentionKernel::fine, "fine"},
                            {AttentionKernel::dense_masked, "dense-masked"}};

// True when the causal kernel computes the pattern: plain causal, or (auto only) a window wider
// than every sequence's slots. The cache's slots, not positions: kv_cache.hpp says why the pattern
// is the same on both.
bool causal_suffices(const kernels::KvCache& cache, const kernels::AttentionPattern& p, AttentionKernel choice) {
  if (!p.global_positions.empty()) return false;
  if (p.kind == kernels::PatternKind::causal) return true;
  if (p.kind != kernels::PatternKind::sliding_window || choice != AttentionKernel::automatic) return false;
  for (int64_t b = 0; b < cache.batch(); ++b)
    if (cache.length(b) > p.window) return false;
  return true;
}

kernels::Grain grain_of(AttentionKernel k) {
  switch (k) {
    case AttentionKernel::coarse: return kernels::Grain::coarse;
    case AttentionKernel::fine: return kernels::Grain::fine;
    case AttentionKernel::dense_masked: return kernels::Grain::dense;
    case AttentionKernel::automatic:
    case AttentionKernel::multigrain: break;
  }
  return kernels::Grain::multi;
}

}  // namespace

AttentionKernel parse_attention_kernel(const std::string& text, const std::string& flag) {
  std::string allowed;
  for (const Named& n : kNames) {
    if (text == n.name) return n.kernel;
    allowed += (allowed.empty() ? "" : ", ") + std::string(n.name);
  }
  throw InputError(flag + ": '" + text + "' (allowed: " + allowed + ")");
}

std::string attention_kernel_name(AttentionKernel k) {
  for (const Named& n : kNames)
    if (n.kernel == k) return n.name;
  return "?";
}

bool bf16_attention_applies(kernels::WeightFormat format, kernels::Backend backend) {
  return (format == kernels::WeightFormat::bf16 || format == kernels::WeightFormat::int8) &&
         backend == kernels::Backend::onednn && kernels::attention_bf16_available();
}

void attend_with_kernel(const kernels::Tensor& q, const kernels::KvCache& cache, std::span<const int64_t> n_new,
                        const kernels::AttentionPattern& pattern, AttentionKernel choice, kernels::Tensor& o,
                        bool bf16_tiles) {
  if (causal_suffices(cache, pattern, choice)) {
    int64_t longest = n_new.empty() ? q.size(1) : 0;
    for (int64_t n : n_new) longest = std::max(longest, n);
    if (bf16_tiles && longest >= kBf16TilesMinTokens)
      kernels::attention_bf16(q, cache, n_new, o);
    else
      kernels::attention(q, cache, n_new, o);
  } else
    kernels::multigrain_attention(q, cache, n_new, pattern, o, grain_of(choice));
}

}  // namespace tori::runtime
