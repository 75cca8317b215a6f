# Generates presets.cpp: every models/presets/*.yaml as a string in embedded_presets().
# Called at build time: cmake -DPRESET_DIR=... -DOUT=... -P embed_presets.cmake
file(GLOB files "${PRESET_DIR}/*.yaml")
list(SORT files)
set(body "")
foreach(f ${files})
  get_filename_component(name "${f}" NAME_WE)
  file(READ "${f}" text)
  string(APPEND body "    {\"${name}\", R\"tori_yaml(${text})tori_yaml\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from models/presets/*.yaml by embed_presets.cmake. Do not edit.
#include <map>
#include <string>
namespace tori::models {
const std::map<std::string, std::string>& embedded_presets() {
  static const std::map<std::string, std::string> presets = {
${body}  };
  return presets;
}
}  // namespace tori::models
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
