"""Messages of features.proto, built at run time with the protobuf runtime.

Debian's protoc for Python (python3-grpc-tools 1.14) generates code that
protobuf 4.21 refuses to load, so the descriptor is written here field for
field; keep it in step with features.proto (the contract).
"""
from google.protobuf import descriptor_pb2, message_factory

_F = descriptor_pb2.FieldDescriptorProto

SERVICE = "modelserver.Features"
COMPUTE = "/modelserver.Features/Compute"


def _build():
    fdp = descriptor_pb2.FileDescriptorProto(name="modelserver/features.proto",
                                             package="modelserver", syntax="proto3")
    req = fdp.message_type.add(name="FeatureRequest")
    req.field.add(name="customer_id", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    req.field.add(name="history_mib", number=2, type=_F.TYPE_UINT32, label=_F.LABEL_OPTIONAL)
    resp = fdp.message_type.add(name="FeatureResponse")
    resp.field.add(name="customer_id", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    resp.field.add(name="rows", number=2, type=_F.TYPE_UINT32, label=_F.LABEL_OPTIONAL)
    resp.field.add(name="score", number=3, type=_F.TYPE_DOUBLE, label=_F.LABEL_OPTIONAL)
    resp.field.add(name="peak_bytes", number=4, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    classes = message_factory.GetMessages([fdp])
    return classes["modelserver.FeatureRequest"], classes["modelserver.FeatureResponse"]


FeatureRequest, FeatureResponse = _build()
