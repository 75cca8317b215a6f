#include "runtime/generator.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

#include "collectives/watchdog.hpp"
#include "kernels/error.hpp"

namespace tori::runtime {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int64_t positions_needed(const std::vector<models::TokenIds>& prompts, int64_t max_new) {
  size_t longest = 0;
  for (const models::TokenIds& p : prompts) longest = std::max(longest, p.size());
  return int64_t(longest) + std::max<int64_t>(max_new, 1) - 1;
}

namespace {

// The loop every generator shares: prefill() gives each sequence's last-prompt-position logits
// [B, V], decode(tokens) the next step's [B, V]; tokens are sampled, stop tokens end sequences.
Generation run_generation(const models::ModelConfig& c, const std::vector<models::TokenIds>& prompts,
                          const GenerateOptions& opt, const std::function<kernels::Tensor()>& prefill,
                          const std::function<kernels::Tensor(const models::TokenIds&)>& decode) {
  if (opt.max_new < 1) throw InputError("--max-new-tokens must be >= 1, got " + std::to_string(opt.max_new));
  validate(opt.sampling);
  const int64_t V = c.vocab, B = static_cast<int64_t>(prompts.size());
  // Refuse up front what would run out of context half way.
  for (int64_t b = 0; b < B; ++b) {
    const int64_t need = positions_needed({prompts[size_t(b)]}, opt.max_new);
    if (need > c.max_seq)
      throw InputError("prompt " + std::to_string(b) + " (" + std::to_string(prompts[size_t(b)].size()) +
                       " tokens) + --max-new-tokens " + std::to_string(opt.max_new) + " needs " + std::to_string(need) +
                        " positions, more than max_seq = " + std::to_string(c.max_seq) + " of model '" + c.name + "'");
  }
  Generation g;
  g.generated.resize(size_t(B));
  std::vector<bool> done(size_t(B), false);
  models::TokenIds next(static_cast<size_t>(B), 0);
  // Picks each live sequence's token from logits rows [B, V]; returns whether any is still live.
  auto pick = [&](const float* rows, int64_t step) {
    models::TokenIds shown(static_cast<size_t>(B), -1);
    bool live = false;
    for (int64_t b = 0; b < B; ++b) {
      if (done[size_t(b)]) continue;
      const int32_t t = sample_token(rows + b * V, V, opt.sampling, b, step);
      next[size_t(b)] = shown[size_t(b)] = t;
      g.generated[size_t(b)].push_back(t);
      const bool stop = std::find(opt.stop_tokens.begin(), opt.stop_tokens.end(), t) != opt.stop_tokens.end() ||
                        (opt.stop_after && opt.stop_after(b, t));
      done[size_t(b)] = stop || static_cast<int64_t>(g.generated[size_t(b)].size()) >= opt.max_new;
      live |= !done[size_t(b)];
    }
    if (opt.on_step) opt.on_step(step, shown);
    return live;
  };
  auto t0 = std::chrono::steady_clock::now();
  kernels::Tensor first = prefill();
  g.prefill_s = seconds_since(t0);
  collectives::watchdog::note_step(std::chrono::steady_clock::now() - t0);  // the automatic --timeout
  if (opt.keep_logits) g.logits.push_back(first);
  bool live = pick(first.data<float>(), 0);
  auto t1 = std::chrono::steady_clock::now();
  for (int64_t step = 1; live && step < opt.max_new; ++step) {
    const auto ts = std::chrono::steady_clock::now();
    kernels::Tensor lg = decode(next);  // finished sequences decode their last token; ignored
    collectives::watchdog::note_step(std::chrono::steady_clock::now() - ts);
    ++g.decode_steps;
    if (opt.keep_logits) g.logits.push_back(lg);
    live = pick(lg.data<float>(), step);
  }
  g.decode_s = seconds_since(t1);
  return g;
}

// Rows [L_b, V] per sequence -> the last row of each, [B, V].
kernels::Tensor last_rows(const std::vector<kernels::Tensor>& per_seq, int64_t V) {
  const int64_t B = static_cast<int64_t>(per_seq.size());
  kernels::Tensor out({B, V}, kernels::DType::f32);
  for (int64_t b = 0; b < B; ++b) {
    const kernels::Tensor& t = per_seq[size_t(b)];
    std::copy(t.data<float>() + (t.size(0) - 1) * V, t.data<float>() + t.size(0) * V, out.data<float>() + b * V);
  }
  return out;
}

}  // namespace

Generation generate(ShardedModel& model, const std::vector<models::TokenIds>& prompts, const GenerateOptions& opt) {
  const int64_t V = model.config().vocab;
  return run_generation(
      model.config(), prompts, opt,
      [&] {
        model.reset();
        return last_rows(model.prefill(prompts, false), V);
      },
      [&](const models::TokenIds& t) { return model.decode(t); });
}

Generation generate_reference(models::ReferenceModel& model, const std::vector<models::TokenIds>& prompts,
                              const GenerateOptions& opt) {
  const int64_t V = model.config().vocab;
  return run_generation(
      model.config(), prompts, opt,
      [&] {
        model.reset(static_cast<int64_t>(prompts.size()));
        return last_rows(model.prefill(prompts), V);
      },
      [&](const models::TokenIds& t) { return model.decode(t); });
}

Plan default_plan(const models::ModelConfig& c, const collectives::TorusShape& shape, int64_t batch) {
  auto fits = [&](const char* text) {
    try {
      validate_phase(c, shape, parse_phase_plan(text, "plan"), batch, "");
      return true;
    } catch (const InputError&) {
      return false;
    }
  };
  auto first = [&](std::initializer_list<const char*> prefs) -> const char* {
    for (const char* p : prefs)
      if (fits(p)) return p;
    return nullptr;
  };
  const char* decode = first({"ws2d/batch:xyz", "ws2d/batch:yz", "ws2d/batch:z", "ws2d/heads"});
  const char* prefill = first({"wg_xyz/batch:xyz", "ws2d/batch:xyz", "ws2d/heads"});
  if (!decode || !prefill)
    validate_phase(c, shape, parse_phase_plan("ws2d/heads", "plan"), batch, "default plan");  // throws the reason
  return parse_plan(std::string("prefill=") + prefill + ",decode=" + decode, "plan");
}

}  // namespace tori::runtime
