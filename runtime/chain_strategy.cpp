#include "runtime/chain_strategy.hpp"

#include "kernels/error.hpp"

namespace tori::runtime {

using kernels::Tensor;

namespace {

class PlainChains final : public ChainStrategy {
 public:
  bool looped() const override { return false; }
  std::pair<Tensor, Tensor> input(collectives::Collectives& coll, const Tensor& h, const MatmulChain& c,
                                  Axes kv_reduce, const ProjectionOperands& w) const override {
    // [M, K/|gather|] --all_gather(gather)--> [M, K]
    const Tensor x = coll.all_gather(h, -1, c.gather);
    // [M, K] @ W_in [K, N] -> [M, N]{partial scatter} --reduce_scatter(scatter)--> [M, N/|scatter|]
    Tensor y = coll.reduce_scatter(w.in(x), -1, c.scatter);
    // [M, K] @ W_kv [K, 2KD] -> [M, 2KD]{partial kv_reduce} --all_reduce(kv_reduce)--> [M, 2KD]
    Tensor kv = w.kv ? coll.all_reduce(w.kv(x), kv_reduce) : Tensor();
    return {std::move(y), std::move(kv)};
  }
  Tensor output(collectives::Collectives& coll, const Tensor& z, const MatmulChain& c,
                const ProjectionOperands& w) const override {
    // [M, K/|gather|] --all_gather(gather)--> @ W_out [K, N] -> {partial scatter} --reduce_scatter(scatter)-->
    return coll.reduce_scatter(w.out(coll.all_gather(z, -1, c.gather)), -1, c.scatter);
  }
};

class LoopedChains final : public ChainStrategy {
 public:
  explicit LoopedChains(bool bidirectional) : bidir_(bidirectional) {}
  bool looped() const override { return true; }
  std::pair<Tensor, Tensor> input(collectives::Collectives& coll, const Tensor& h, const MatmulChain& c,
                                  Axes kv_reduce, const ProjectionOperands& w) const override {
    // The tiles were cut for this chain's gather and scatter axes, W_kv as the side weight, whose
    // all-reduce runs over the scatter axes: one looped einsum.
    if (kv_reduce != c.scatter && w.with_kv)
      throw Error("looped chains: the K/V product must be reduced over the input chain's scatter axes (" +
                  c.scatter.str() + "), not " + kv_reduce.str());
    collectives::EinsumResult r = collectives::collective_einsum(coll, h, w.in_tiles(), bidir_);
    return {std::move(r.y), w.with_kv ? r.side.wait() : Tensor()};
  }
  Tensor output(collectives::Collectives& coll, const Tensor& z, const MatmulChain&,
                const ProjectionOperands& w) const override {
    return collectives::collective_einsum(coll, z, w.out_tiles(), bidir_).y;
  }

 private:
  bool bidir_;
};

}  // namespace

const ChainStrategy& chain_strategy(collectives::Overlap overlap, const Placement& pl, const ProjectionDataflow& f) {
  static const PlainChains plain;
  static const LoopedChains looped(false), looped_bidir(true);
  if (overlap == collectives::Overlap::none) return plain;
  if (!f.weight_gather.empty() && pl.shape.group_size(f.in.gather | f.out.scatter) == 1) return plain;
  return overlap == collectives::Overlap::looped_bidir ? looped_bidir : looped;
}

}  // namespace tori::runtime
