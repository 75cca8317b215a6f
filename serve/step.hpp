#pragma once
// The step protocol: rank 0 decides every forward step of the served model and broadcasts it; the
// other ranks run what they receive. A Step is the whole of what every rank must agree on — which
// slots are emptied first (a new request takes them), then one prefill (each slot's next piece of
// its prompt, empty = idle) or one decode (each slot's input token, ShardedModel::kIdle = idle),
// or the end of serving. Tokens are decided on rank 0 (it samples), so sampling state never has to
// match across ranks. Encoded as int32s: [kind, n_resets, resets..., per slot: n, ids...], sent as
// its length then its body (two broadcasts on a communicator of its own).
#include <cstdint>
#include <vector>

#include <mpi.h>

#include "models/reference_model.hpp"

namespace tori::serve {

struct Step {
  enum class Kind : int32_t { prefill = 1, decode = 2, stop = 3 };
  Kind kind = Kind::stop;
  std::vector<int32_t> resets;           // slots whose KV cache is emptied before the step
  std::vector<models::TokenIds> tokens;  // per slot: prefill its piece; decode one token (or kIdle)
};

class StepChannel {
 public:
  StepChannel();  // duplicates MPI_COMM_WORLD
  ~StepChannel();
  StepChannel(const StepChannel&) = delete;
  StepChannel& operator=(const StepChannel&) = delete;
  bool root() const { return rank_ == 0; }
  // Rank 0: sends `s`. Collective.
  void send(const Step& s);
  // Other ranks: the next step. Waits without spinning (an idle server costs no CPU).
  Step receive();

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
};

std::vector<int32_t> encode(const Step& s);
Step decode_step(const std::vector<int32_t>& words);  // throws Error on a malformed encoding

}  // namespace tori::serve
