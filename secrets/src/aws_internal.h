// What the AWS provider and its credential sources share: AWS's error answers and credential
// documents. Private to the secrets library; what every provider uses is in provider_internal.h.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/http_client.h"
#include "outpost/secrets/sigv4.h"

namespace outpost::secrets::aws_internal {

// The text of the first <tag>...</tag> element, entities decoded.
std::optional<std::string> xmlElement(std::string_view xml, std::string_view tag);

// An AWS error answer's code: the x-amzn-ErrorType header, the JSON __type (after '#') or code,
// or the XML <Code>. Empty when there is none.
std::string awsErrorCode(const HttpResponse& response);
// Its message (JSON message/Message, XML <Message>), cut short and without control characters.
std::string awsErrorMessage(const HttpResponse& response);

// The container and instance-metadata credential documents: AccessKeyId, SecretAccessKey,
// Token, Expiration. The error never carries the document.
std::expected<AwsCredentials, std::string> credentialsFromJson(std::string_view json);

}  // namespace outpost::secrets::aws_internal
