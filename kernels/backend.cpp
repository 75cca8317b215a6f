#include "kernels/backend.hpp"

#include "kernels/error.hpp"

namespace tori::kernels {

std::string_view backend_name(Backend b) {
  switch (b) {
    case Backend::onednn: return "onednn";
    case Backend::openblas: return "openblas";
    case Backend::reference: return "reference";
  }
  return "?";
}

Backend default_backend() { return Backend::onednn; }

Backend parse_matmul_backend(const std::string& s, const std::string& flag) {
  if (s == "onednn") return Backend::onednn;
  if (s == "openblas") return Backend::openblas;
  if (s == "reference") return Backend::reference;
  if (s == "auto" || s.empty()) return default_backend();
  throw InputError(flag + ": unknown matmul backend '" + s +
                   "' (allowed: onednn, openblas, reference, auto)");
}

}  // namespace tori::kernels
