#pragma once
// whole_answer: how the HTTP thread of a response that is not streamed waits for its job's whole
// text while watching its client (client_socket.hpp). The client is looked at after every wake-up
// — each piece of text the scheduler appends, and at the latest every `check` when none comes —
// so a client that goes away is noticed within about one decode step or `check`, whichever is
// longer, however fast the tokens come. (Looking only when `check` passed with no text, as before,
// never looked while tokens came faster than `check`: a disconnected request then ran to its end.)
// A client found gone cancels the job (the scheduler frees its slot at its next step, or drops it
// from the queue); the wait still ends only once the scheduler has finished the job.
#include <chrono>
#include <string>

#include "serve/client_socket.hpp"
#include "serve/job.hpp"

namespace tori::serve {

struct WholeAnswer {
  std::string text;  // all the text appended
  Job::Update last;  // the final update (finished, reason, tokens)
  bool cancelled = false;  // the job was cancelled (here or elsewhere): nobody to answer
};

WholeAnswer whole_answer(Job& job, const ClientSocket& client, std::chrono::milliseconds check);

}  // namespace tori::serve
