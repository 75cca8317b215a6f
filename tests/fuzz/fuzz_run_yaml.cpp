// libFuzzer target: the run YAML (launch/run_config.*: apply_run_yaml over the flags of
// `tori generate`), read from a file as `--config run.yaml` does.
#include "launch/run_config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

using namespace tori;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".yaml");
  const std::string& path = file.write(data, size);
  CLI::App app;
  launch::RunConfig r;
  launch::add_run_flags(app, r);
  r.config = path;
  fuzz::expected([&] { launch::apply_run_yaml(app, r); });
  return 0;
}
