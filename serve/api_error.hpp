#pragma once
// ApiError: a request the server refuses, as the OpenAI API reports it: an HTTP status and
// {"error": {"message", "type", "param", "code"}} naming the field at fault.
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace tori::serve {

struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;
  ApiError(int status, std::string message, std::string param = "", std::string type = "invalid_request_error",
           std::string code = "")
      : std::runtime_error(std::move(message)), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
  nlohmann::json body() const {
    return {{"error",
             {{"message", what()},
              {"type", type},
              {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
              {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
  }
};

}  // namespace tori::serve
