// libFuzzer target: the model YAML parser (models/config.*: parse_model_config and validate).
// An accepted config must survive to_yaml() and parse back to the same config, as config.hpp
// promises for dumps and logs.
#include "models/config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;
using namespace tori::models;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ModelConfig c;
  if (!fuzz::expected([&] { c = parse_model_config(text, "fuzz.yaml"); })) return 0;
  c.n_params();
  const std::string dumped = to_yaml(c);
  ModelConfig back;
  if (!fuzz::expected([&] { back = parse_model_config(dumped, "to_yaml"); }))
    fuzz::finding("to_yaml() of an accepted config does not parse back:\n" + dumped);
  fuzz::check(to_yaml(back) == dumped, "to_yaml() does not round-trip:\n" + dumped + "---\n" + to_yaml(back));
  return 0;
}
