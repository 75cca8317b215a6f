# Generates a .cpp holding every PRESET_DIR/*.yaml as a string in NAMESPACE::FUNCTION() (a map from
# file name without .yaml to text). Used for models/presets (the defaults) and planning/profiles.
# Called at build time: cmake -DPRESET_DIR=... -DOUT=... [-DNAMESPACE=... -DFUNCTION=...] -P embed_presets.cmake
if(NOT NAMESPACE)
  set(NAMESPACE tori::models)
endif()
if(NOT FUNCTION)
  set(FUNCTION embedded_presets)
endif()
file(GLOB files "${PRESET_DIR}/*.yaml")
list(SORT files)
set(body "")
foreach(f ${files})
  get_filename_component(name "${f}" NAME_WE)
  file(READ "${f}" text)
  string(APPEND body "    {\"${name}\", R\"tori_yaml(${text})tori_yaml\"},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from ${PRESET_DIR}/*.yaml by embed_presets.cmake. Do not edit.
#include <map>
#include <string>
namespace ${NAMESPACE} {
const std::map<std::string, std::string>& ${FUNCTION}() {
  static const std::map<std::string, std::string> presets = {
${body}  };
  return presets;
}
}  // namespace ${NAMESPACE}
")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
