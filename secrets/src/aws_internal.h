// Helpers the AWS provider and its credential sources share; private to the secrets library.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/http_client.h"
#include "outpost/secrets/sigv4.h"

namespace outpost::aws_internal {

// Overwrites and clears a string that held a credential or a secret.
void wipe(std::string& s);

std::string_view trimWhitespace(std::string_view s);

// A small file's bytes; the error names the file and the reason (never its contents).
std::expected<std::string, std::string> readSmallFile(const std::string& path,
                                                      std::size_t max_bytes = 1024 * 1024);

// The text of the first <tag>...</tag> element, entities decoded.
std::optional<std::string> xmlElement(std::string_view xml, std::string_view tag);

// An AWS error answer's code: the x-amzn-ErrorType header, the JSON __type (after '#') or code,
// or the XML <Code>. Empty when there is none.
std::string awsErrorCode(const HttpResponse& response);
// Its message (JSON message/Message, XML <Message>), cut short and without control characters.
std::string awsErrorMessage(const HttpResponse& response);

// Text from a server, fit for an error message: at most max bytes, control characters dropped.
std::string forMessage(std::string_view text, std::size_t max = 300);

// The container and instance-metadata credential documents: AccessKeyId, SecretAccessKey,
// Token, Expiration. The error never carries the document.
std::expected<AwsCredentials, std::string> credentialsFromJson(std::string_view json);

}  // namespace outpost::aws_internal
