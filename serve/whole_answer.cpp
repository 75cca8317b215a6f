#include "serve/whole_answer.hpp"

namespace tori::serve {

WholeAnswer whole_answer(Job& job, const ClientSocket& client, std::chrono::milliseconds check) {
  WholeAnswer a;
  while (!a.last.finished) {
    if (auto got = job.wait_update_for(check)) {
      a.text += got->text;
      a.last = std::move(*got);
      if (a.last.finished) break;
    }
    if (!job.cancelled && client.gone()) job.cancelled = true;
  }
  a.cancelled = job.cancelled;
  return a;
}

}  // namespace tori::serve
