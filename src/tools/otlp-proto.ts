/**
 * The subset of the OTLP protobuf schema that a trace receiver needs, as
 * `.proto` source text for protobufjs to parse at runtime.
 *
 * Field numbers and types are copied from open-telemetry/opentelemetry-proto
 * (v1.11.0):
 * - opentelemetry/proto/collector/trace/v1/trace_service.proto
 * - opentelemetry/proto/trace/v1/trace.proto
 * - opentelemetry/proto/common/v1/common.proto
 * - opentelemetry/proto/resource/v1/resource.proto
 *
 * Kept as one string in one file rather than shipped `.proto` files so the
 * package needs no file-system lookup at runtime and the schema is pinned to
 * the code that reads it. Deliberately left out, and skipped as unknown fields
 * on the wire: `AnyValue.string_value_strindex` (8) and
 * `KeyValue.key_strindex` (3), which only the profiles signal's dictionary
 * uses, and `Resource.entity_refs` (3), which nothing here reads.
 *
 * The four upstream files stay four strings because protobufjs takes one
 * `syntax` and one `package` statement per parsed source; they are parsed
 * into one shared `Root`, which resolves the cross-package references.
 */

/** common.proto: attribute values and the instrumentation scope. */
const COMMON_PROTO = `
syntax = "proto3";
package opentelemetry.proto.common.v1;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}

message ArrayValue {
  repeated AnyValue values = 1;
}

message KeyValueList {
  repeated KeyValue values = 1;
}

message KeyValue {
  string key = 1;
  AnyValue value = 2;
}

message InstrumentationScope {
  string name = 1;
  string version = 2;
  repeated KeyValue attributes = 3;
  uint32 dropped_attributes_count = 4;
}
`;

/** resource.proto. */
const RESOURCE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.resource.v1;

message Resource {
  repeated opentelemetry.proto.common.v1.KeyValue attributes = 1;
  uint32 dropped_attributes_count = 2;
}
`;

/** trace.proto: spans, their events, links and status. */
const TRACE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.trace.v1;

message TracesData {
  repeated ResourceSpans resource_spans = 1;
}

message ResourceSpans {
  reserved 1000;
  opentelemetry.proto.resource.v1.Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
  string schema_url = 3;
}

message ScopeSpans {
  opentelemetry.proto.common.v1.InstrumentationScope scope = 1;
  repeated Span spans = 2;
  string schema_url = 3;
}

message Span {
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  fixed32 flags = 16;
  string name = 5;

  enum SpanKind {
    SPAN_KIND_UNSPECIFIED = 0;
    SPAN_KIND_INTERNAL = 1;
    SPAN_KIND_SERVER = 2;
    SPAN_KIND_CLIENT = 3;
    SPAN_KIND_PRODUCER = 4;
    SPAN_KIND_CONSUMER = 5;
  }

  SpanKind kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated opentelemetry.proto.common.v1.KeyValue attributes = 9;
  uint32 dropped_attributes_count = 10;

  message Event {
    fixed64 time_unix_nano = 1;
    string name = 2;
    repeated opentelemetry.proto.common.v1.KeyValue attributes = 3;
    uint32 dropped_attributes_count = 4;
  }

  repeated Event events = 11;
  uint32 dropped_events_count = 12;

  message Link {
    bytes trace_id = 1;
    bytes span_id = 2;
    string trace_state = 3;
    repeated opentelemetry.proto.common.v1.KeyValue attributes = 4;
    uint32 dropped_attributes_count = 5;
    fixed32 flags = 6;
  }

  repeated Link links = 13;
  uint32 dropped_links_count = 14;
  Status status = 15;
}

message Status {
  reserved 1;
  string message = 2;

  enum StatusCode {
    STATUS_CODE_UNSET = 0;
    STATUS_CODE_OK = 1;
    STATUS_CODE_ERROR = 2;
  }

  StatusCode code = 3;
}
`;

/** trace_service.proto: the request and response of `POST /v1/traces`. */
const TRACE_SERVICE_PROTO = `
syntax = "proto3";
package opentelemetry.proto.collector.trace.v1;

message ExportTraceServiceRequest {
  repeated opentelemetry.proto.trace.v1.ResourceSpans resource_spans = 1;
}

message ExportTraceServiceResponse {
  ExportTracePartialSuccess partial_success = 1;
}

message ExportTracePartialSuccess {
  int64 rejected_spans = 1;
  string error_message = 2;
}
`;

/**
 * The OTLP trace schema as `.proto` sources, one per upstream file, in
 * dependency order. Parse each into the same protobufjs `Root`.
 */
export const OTLP_TRACE_PROTO_FILES: readonly string[] = [
  COMMON_PROTO,
  RESOURCE_PROTO,
  TRACE_PROTO,
  TRACE_SERVICE_PROTO,
];

/** Fully qualified name of the request message of `POST /v1/traces`. */
export const EXPORT_TRACE_REQUEST_TYPE = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';

/** Fully qualified name of the response message of `POST /v1/traces`. */
export const EXPORT_TRACE_RESPONSE_TYPE = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse';
