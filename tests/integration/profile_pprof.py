"""Decode a pprof file written by `memfence profile report --format pprof`
with the protobuf library (python3-protobuf), against the schema of
github.com/google/pprof proto/profile.proto (the messages and fields a
heap profile uses, with their numbers and types, declared below), and
check its internal consistency the way pprof's own validation does:
every sample has one value per sample type, every location id and
function id a sample or location refers to exists, every string index is
inside the string table, and string_table[0] is "".

    profile_pprof.py FILE.pb.gz EXPECTED_FUNCTION [SAMPLE_TYPE]
Prints "FUNCTION BYTES" for the top five sites, by SAMPLE_TYPE
(default: the profile's default sample type, else its bytes). A profile
with Go's four heap types (what /debug/pprof/heap serves) must name its
default sample type; each sample's labels are checked and printed as
"label KEY" once per key. A site is named as the text report names it:
by its innermost Python frame (a function of a .py file) when it has
one, else by its leaf function.
"""
import gzip
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def build():
    fd = descriptor_pb2.FileDescriptorProto(name="profile.proto", package="perftools.profiles",
                                            syntax="proto3")

    def msg(name, fields):
        m = fd.message_type.add(name=name)
        for fname, num, typ, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                f.type_name = ".perftools.profiles." + tname
    O, R = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Profile", [("sample_type", 1, F.TYPE_MESSAGE, R, "ValueType"),
                    ("sample", 2, F.TYPE_MESSAGE, R, "Sample"),
                    ("mapping", 3, F.TYPE_MESSAGE, R, "Mapping"),
                    ("location", 4, F.TYPE_MESSAGE, R, "Location"),
                    ("function", 5, F.TYPE_MESSAGE, R, "Function"),
                    ("string_table", 6, F.TYPE_STRING, R, None),
                    ("drop_frames", 7, F.TYPE_INT64, O, None),
                    ("keep_frames", 8, F.TYPE_INT64, O, None),
                    ("time_nanos", 9, F.TYPE_INT64, O, None),
                    ("duration_nanos", 10, F.TYPE_INT64, O, None),
                    ("period_type", 11, F.TYPE_MESSAGE, O, "ValueType"),
                    ("period", 12, F.TYPE_INT64, O, None),
                    ("comment", 13, F.TYPE_INT64, R, None),
                    ("default_sample_type", 14, F.TYPE_INT64, O, None)])
    msg("ValueType", [("type", 1, F.TYPE_INT64, O, None), ("unit", 2, F.TYPE_INT64, O, None)])
    msg("Sample", [("location_id", 1, F.TYPE_UINT64, R, None), ("value", 2, F.TYPE_INT64, R, None),
                   ("label", 3, F.TYPE_MESSAGE, R, "Label")])
    msg("Label", [("key", 1, F.TYPE_INT64, O, None), ("str", 2, F.TYPE_INT64, O, None),
                  ("num", 3, F.TYPE_INT64, O, None), ("num_unit", 4, F.TYPE_INT64, O, None)])
    msg("Mapping", [("id", 1, F.TYPE_UINT64, O, None), ("memory_start", 2, F.TYPE_UINT64, O, None),
                    ("memory_limit", 3, F.TYPE_UINT64, O, None), ("file_offset", 4, F.TYPE_UINT64, O, None),
                    ("filename", 5, F.TYPE_INT64, O, None), ("build_id", 6, F.TYPE_INT64, O, None)])
    msg("Location", [("id", 1, F.TYPE_UINT64, O, None), ("mapping_id", 2, F.TYPE_UINT64, O, None),
                     ("address", 3, F.TYPE_UINT64, O, None), ("line", 4, F.TYPE_MESSAGE, R, "Line"),
                     ("is_folded", 5, F.TYPE_BOOL, O, None)])
    msg("Line", [("function_id", 1, F.TYPE_UINT64, O, None), ("line", 2, F.TYPE_INT64, O, None)])
    msg("Function", [("id", 1, F.TYPE_UINT64, O, None), ("name", 2, F.TYPE_INT64, O, None),
                     ("system_name", 3, F.TYPE_INT64, O, None), ("filename", 4, F.TYPE_INT64, O, None),
                     ("start_line", 5, F.TYPE_INT64, O, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    desc = pool.FindMessageTypeByName("perftools.profiles.Profile")
    try:
        return message_factory.GetMessageClass(desc)
    except AttributeError:
        return message_factory.MessageFactory(pool).GetPrototype(desc)


def main():
    raw = open(sys.argv[1], "rb").read()
    if raw[:2] != b"\x1f\x8b":
        sys.exit("not gzip-compressed")
    p = build()()
    p.ParseFromString(gzip.decompress(raw))
    st = p.string_table
    assert st and st[0] == "", "string_table[0] must be empty"

    def s(i):
        assert 0 <= i < len(st), f"string index {i} out of range"
        return st[i]
    types = [(s(t.type), s(t.unit)) for t in p.sample_type]
    go_heap = [("alloc_objects", "count"), ("alloc_space", "bytes"),
               ("inuse_objects", "count"), ("inuse_space", "bytes")]
    assert types in ([("alloc_objects", "count"), ("alloc_space", "bytes")],
                     [("inuse_objects", "count"), ("inuse_space", "bytes")], go_heap), types
    names = [t for t, _ in types]
    rank = 1
    if len(types) == 4:
        assert p.default_sample_type, "no default sample type"
        rank = names.index(s(p.default_sample_type))
        print("default", names[rank])
    if len(sys.argv) > 3:
        rank = names.index(sys.argv[3])
    s(p.period_type.type), s(p.period_type.unit)
    funcs = {f.id: f for f in p.function}
    locs = {l.id: l for l in p.location}
    assert len(funcs) == len(p.function) and len(locs) == len(p.location), "duplicate ids"
    for f in p.function:
        assert f.id != 0
        s(f.name), s(f.system_name), s(f.filename)
    for l in p.location:
        for ln in l.line:
            assert ln.function_id in funcs, f"location {l.id}: unknown function {ln.function_id}"
    leaf = {}
    keys = set()
    assert p.sample, "no samples"
    for smp in p.sample:
        assert len(smp.value) == len(types), "value count differs from sample_type"
        assert smp.location_id, "sample without a stack"
        for lid in smp.location_id:
            assert lid in locs, f"unknown location {lid}"
        for lab in smp.label:
            s(lab.key), s(lab.str)
            keys.add(s(lab.key))
        fns = [funcs[locs[lid].line[0].function_id] for lid in smp.location_id]
        py = [f for f in fns if s(f.filename).endswith(".py")]
        fn = s((py or fns)[0].name)
        leaf[fn] = leaf.get(fn, 0) + smp.value[rank]
    for k in sorted(keys):
        print("label", k)
    top = sorted(leaf.items(), key=lambda kv: -kv[1])[:5]
    for fn, v in top:
        print(fn, v)
    if top[0][0] != sys.argv[2]:
        sys.exit(f"top site is {top[0][0]}, expected {sys.argv[2]}")


if __name__ == "__main__":
    main()
