#pragma once
// The embedded default job: model, weight seed and prompts used when the user gives none.
namespace tori::launch {
inline constexpr const char* kDefaultModel = "palm-tiny";
inline constexpr unsigned long long kDefaultSeed = 1234;
inline constexpr const char* kDefaultPrompts =
    "1,2,3,4,5,6,7,8;42,17,99;300,12,7,150,2,9;5;8,9,10,11,12;13,14;100,101,102,103,104,105,106;77,78,79";
inline constexpr int kDefaultMaxNewTokens = 16;
}  // namespace tori::launch
