#include "serve/http_api.hpp"

#include <ctime>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "kernels/error.hpp"
#include "serve/api_error.hpp"
#include "serve/client_socket.hpp"
#include "serve/whole_answer.hpp"

namespace tori::serve {

using nlohmann::json;

namespace {

// Longest a handler waiting for a complete (not streamed) answer goes without looking at its
// client's connection (it also looks after each piece of text: whole_answer.hpp).
constexpr std::chrono::milliseconds kClientCheck{50};

// Longest stop() waits for responses still being written. By then the scheduler has finished every
// job, so what is left is the last events of a stream (each write bounded by httplib's write
// timeout, 5 s, should a client stop reading).
constexpr std::chrono::seconds kFinishWrites{10};

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.body()); }

json usage(const Job& j, int64_t completion) {
  const int64_t prompt = int64_t(j.req.prompt.size());
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

// finish_reason as OpenAI names it; "abort" (cancelled, or cut by shutdown) is not one of its
// values, so it is reported as null on the wire.
json reason_json(const std::string& r) { return r == "stop" || r == "length" ? json(r) : json(nullptr); }

// One choice of a response or a chunk.
json choice(const Job& j, const std::string& text, const json& finish, bool chunk, bool first) {
  json c = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
  if (!j.req.chat) {
    c["text"] = text;
  } else if (chunk) {
    c["delta"] = json::object();
    if (first) c["delta"]["role"] = "assistant";
    if (!text.empty() || first) c["delta"]["content"] = text;
  } else {
    c["message"] = {{"role", "assistant"}, {"content", text}};
  }
  return c;
}

}  // namespace

HttpApi::HttpApi(const HttpOptions& opt, const ModelInfo& info, JobQueue& queue, Metrics& metrics,
                 const std::atomic<bool>& draining)
    : opt_(opt), info_(info), queue_(queue), metrics_(metrics), draining_(draining),
      svr_(std::make_unique<httplib::Server>()) {
  routes();
}

HttpApi::~HttpApi() { stop(); }

void HttpApi::start() {
  const bool bound = opt_.port == 0 ? (opt_.port = svr_->bind_to_any_port(opt_.host)) > 0
                                    : svr_->bind_to_port(opt_.host, opt_.port);
  if (!bound)
    throw InputError("--host/--port: cannot listen on " + opt_.host + ":" + std::to_string(opt_.port) +
                     " (address in use, or not an address of this host)");
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
  spdlog::info("serve: listening on http://{}:{}", opt_.host, opt_.port);
}

std::shared_ptr<void> HttpApi::answering() {
  {
    std::lock_guard lock(answering_m_);
    ++answering_;
  }
  return std::shared_ptr<void>(nullptr, [this](void*) {
    {
      std::lock_guard lock(answering_m_);
      --answering_;
    }
    answering_cv_.notify_all();
  });
}

void HttpApi::stop() {
  if (thread_.joinable()) {
    {
      std::unique_lock lock(answering_m_);
      if (!answering_cv_.wait_for(lock, kFinishWrites, [&] { return answering_ == 0; }))
        spdlog::warn("serve: {} response(s) still being written after {} s; stopping anyway", answering_,
                     kFinishWrites.count());
    }
    svr_->stop();
    thread_.join();
  }
}

void HttpApi::routes() {
  httplib::Server& s = *svr_;
  const int threads = opt_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  s.set_payload_max_length(opt_.max_body);
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opt_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + opt_.api_key) return httplib::Server::HandlerResponse::Unhandled;
    const bool given = req.has_header("Authorization");
    send_error(res, ApiError(401, given ? "Incorrect API key provided" : "Missing API key: send Authorization: Bearer KEY",
                             "", "invalid_request_error", "invalid_api_key"));
    metrics_.request(req.path, 401);
    return httplib::Server::HandlerResponse::Handled;
  });
  // What httplib answers itself (no route: 404, method: 405, body over the limit: 413, ...) gets
  // the OpenAI error shape too.
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string msg = res.status == 404   ? "Unknown endpoint " + req.method + " " + req.path
                            : res.status == 413 ? "The request body is larger than the server's limit (--max-body-kib)"
                                                : "HTTP " + std::to_string(res.status) + " on " + req.method + " " + req.path;
    send_error(res, ApiError(res.status, msg));
    metrics_.request(res.status == 404 ? "unknown" : req.path, res.status);
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    spdlog::error("serve: {}", what);
    send_error(res, ApiError(500, what, "", "server_error"));
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_) return send_json(res, 503, {{"status", "draining"}});
    send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"},
                         {"data", json::array({{{"id", info_.id}, {"object", "model"}, {"created", 0}, {"owned_by", "tori"}}})}});
    metrics_.request(req.path, 200);
  });
  for (bool chat : {false, true})
    s.Post(chat ? "/v1/chat/completions" : "/v1/completions",
           [this, chat](const httplib::Request& req, httplib::Response& res) {
             try {
               auto answering_token = answering();
               if (draining_) throw ApiError(503, "The server is shutting down", "", "server_error", "shutting_down");
               auto job = std::make_shared<Job>(parse_completion(req.body, chat, info_));
               const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++next_id_);
               const int64_t created = int64_t(std::time(nullptr));
               json head = {{"id", id},
                            {"object", chat ? (job->req.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                            {"created", created},
                            {"model", info_.id}};
               queue_.push(job);
               if (!job->req.stream) {
                 // Nothing is written until the answer is complete, so a client that goes away is
                 // noticed by looking at its connection while waiting (whole_answer.hpp).
                 const ClientSocket client(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
                 if (!client.found()) spdlog::debug("serve: no socket for {}:{}; its disconnect goes unnoticed", req.remote_addr, req.remote_port);
                 const WholeAnswer a = whole_answer(*job, client, kClientCheck);
                 if (a.cancelled) {  // nobody to answer; counted as nginx does (499: client closed request)
                   spdlog::info("serve: {} {}:{} disconnected; request cancelled", req.path, req.remote_addr, req.remote_port);
                   metrics_.request(req.path, 499);
                   return;
                 }
                 if (a.last.reason == "abort") throw ApiError(503, "The server shut down before the request finished", "", "server_error");
                 if (a.last.reason == "error") throw ApiError(500, a.last.error, "", "server_error");
                 json body = head;
                 body["choices"] = json::array({choice(*job, a.text, reason_json(a.last.reason), false, false)});
                 body["usage"] = usage(*job, a.last.tokens);
                 send_json(res, 200, body);
                 metrics_.request(req.path, 200);
                 return;
               }
               metrics_.request(req.path, 200);
               res.set_header("Cache-Control", "no-cache");
               auto first = std::make_shared<bool>(true);
               res.set_chunked_content_provider(
                   "text/event-stream",
                   [job, head, first, answering_token](size_t, httplib::DataSink& sink) {
                     auto event = [&](const json& chunk) {
                       const std::string e = "data: " + chunk.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
                       return sink.write(e.data(), e.size());
                     };
                     const Job::Update u = job->wait_update();
                     if (!u.text.empty() || *first) {
                       json c = head;
                       c["choices"] = json::array({choice(*job, u.text, nullptr, true, *first)});
                       *first = false;
                       if (!event(c)) return false;
                     }
                     if (!u.finished) return true;
                     if (u.reason == "error") {  // the model failed: an error event ends the stream
                       if (!event(ApiError(500, u.error, "", "server_error").body())) return false;
                     } else {
                       json last = head;
                       last["choices"] = json::array({choice(*job, "", reason_json(u.reason), true, false)});
                       if (!event(last)) return false;
                       if (job->req.include_usage) {
                         json us = head;
                         us["choices"] = json::array();
                         us["usage"] = usage(*job, u.tokens);
                         if (!event(us)) return false;
                       }
                     }
                     const std::string done = "data: [DONE]\n\n";
                     if (!sink.write(done.data(), done.size())) return false;
                     sink.done();
                     return true;
                   },
                   [job](bool success) {
                     if (!success) job->cancelled = true;  // the client went away: free its slot
                   });
             } catch (const ApiError& e) {
               send_error(res, e);
               metrics_.request(req.path, e.status);
             }
           });
}

}  // namespace tori::serve
