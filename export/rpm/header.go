package rpm

import (
	"encoding/binary"
	"io"
	"sort"
	"strings"

	"github.com/storepack/storepack/internal/countw"
)

// Tags of the signature header and of the main header (rpm's rpmtag.h).
const (
	tagHeaderSignatures = 62
	tagHeaderImmutable  = 63
	tagHeaderI18NTable  = 100

	sigSize            = 1000
	sigPayloadSize     = 1007
	sigSHA256          = 273
	sigLongSize        = 270
	sigLongArchiveSize = 271

	tagName              = 1000
	tagVersion           = 1001
	tagRelease           = 1002
	tagSummary           = 1004
	tagDescription       = 1005
	tagBuildTime         = 1006
	tagBuildHost         = 1007
	tagSize              = 1009
	tagLicense           = 1014
	tagPackager          = 1015
	tagGroup             = 1016
	tagURL               = 1020
	tagOS                = 1021
	tagArch              = 1022
	tagPreIn             = 1023
	tagPostIn            = 1024
	tagPreUn             = 1025
	tagPostUn            = 1026
	tagFileSizes         = 1028
	tagFileModes         = 1030
	tagFileRDevs         = 1033
	tagFileMTimes        = 1034
	tagFileDigests       = 1035
	tagFileLinkTos       = 1036
	tagFileFlags         = 1037
	tagFileUserName      = 1039
	tagFileGroupName     = 1040
	tagSourceRPM         = 1044
	tagFileVerifyFlags   = 1045
	tagFileDevices       = 1095
	tagFileINodes        = 1096
	tagFileLangs         = 1097
	tagDirIndexes        = 1116
	tagBaseNames         = 1117
	tagDirNames          = 1118
	tagChangelogTime     = 1080
	tagChangelogName     = 1081
	tagChangelogText     = 1082
	tagPreInProg         = 1085
	tagPostInProg        = 1086
	tagPreUnProg         = 1087
	tagPostUnProg        = 1088
	tagPayloadFormat     = 1124
	tagPayloadCompressor = 1125
	tagPayloadFlags      = 1126
	tagLongFileSizes     = 5008
	tagLongSize          = 5009
	tagFileDigestAlgo    = 5011
	tagPayloadDigest     = 5092
	tagPayloadDigestAlgo = 5093

	// hashSHA256 is rpm's number of SHA-256 (PGPHASHALGO_SHA256).
	hashSHA256 = 8
)

// Data types of header entries.
const (
	typeInt16       = 3
	typeInt32       = 4
	typeInt64       = 5
	typeString      = 6
	typeBinary      = 7
	typeStringArray = 8
)

// entry is one header entry's type, count and data.
type entry struct {
	typ, count int32
	data       []byte
}

func int32Entry(v int32) entry { return int32ArrayEntry([]int32{v}) }
func int64Entry(v int64) entry { return int64ArrayEntry([]int64{v}) }

func int32ArrayEntry(v []int32) entry {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint32(b[4*i:], uint32(x))
	}
	return entry{typeInt32, int32(len(v)), b}
}

func int64ArrayEntry(v []int64) entry {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint64(b[8*i:], uint64(x))
	}
	return entry{typeInt64, int32(len(v)), b}
}

func stringEntry(s string) entry { return entry{typeString, 1, append([]byte(s), 0)} }

func stringArrayEntry(v []string) entry {
	return entry{typeStringArray, int32(len(v)), append([]byte(strings.Join(v, "\x00")), 0)}
}

// index is a header being built: entries by tag.
type index struct{ entries map[int32]entry }

func (h *index) add(tag int32, e entry) {
	if h.entries == nil {
		h.entries = map[int32]entry{}
	}
	h.entries[tag] = e
}

// alignment of each data type in the data store.
var alignment = map[int32]int{typeInt16: 2, typeInt32: 4, typeInt64: 8}

// writeTo writes the header with its region tag to w: the magic, the
// counts, the region's index entry first, then the others sorted by tag,
// then the data store (each entry aligned as its type wants) ending with
// the region's trailer, which points back over the whole index. The
// layout is computed first and the entries' data written as they are, so
// that a header of many files is never copied whole.
func (h *index) writeTo(w io.Writer, region int32) (int64, error) {
	tags := make([]int32, 0, len(h.entries))
	for t := range h.entries {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
	offsets := make([]int, len(tags))
	dl := 0
	for i, t := range tags {
		e := h.entries[t]
		if a := alignment[e.typ]; a > 0 && dl%a != 0 {
			dl += a - dl%a
		}
		offsets[i] = dl
		dl += len(e.data)
	}
	il := int32(len(tags) + 1)
	trailerAt := dl
	dl += 16
	put := func(b []byte, v ...int32) []byte {
		for _, x := range v {
			b = binary.BigEndian.AppendUint32(b, uint32(x))
		}
		return b
	}
	head := append(make([]byte, 0, 16+16*int(il)), 0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0)
	head = put(head, il, int32(dl))
	head = put(head, region, typeBinary, int32(trailerAt), 16)
	for i, t := range tags {
		e := h.entries[t]
		head = put(head, t, e.typ, int32(offsets[i]), e.count)
	}
	cw := &countw.Writer{W: w}
	if _, err := cw.Write(head); err != nil {
		return cw.N, err
	}
	var pad [8]byte
	at := 0
	for i, t := range tags {
		if _, err := cw.Write(pad[:offsets[i]-at]); err != nil {
			return cw.N, err
		}
		e := h.entries[t]
		if _, err := cw.Write(e.data); err != nil {
			return cw.N, err
		}
		at = offsets[i] + len(e.data)
	}
	trailer := put(nil, region, typeBinary, -16*il, 16)
	_, err := cw.Write(trailer)
	return cw.N, err
}
