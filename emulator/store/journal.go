package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"
)

// Frame layout, shared by journal records and the snapshot:
//
//	magic   4 bytes  0xD9 'r' 'j' 0x01
//	length  4 bytes  little-endian length of payload
//	crc     4 bytes  little-endian CRC-32C (Castagnoli) of length||payload
//	payload length bytes of JSON
//
// The CRC covers the length so a torn or flipped length is caught like a torn
// payload. The magic lets recovery look past a damaged frame for intact ones
// behind it: that is how a torn tail (nothing valid follows, safe to drop) is
// told apart from damage in the middle (acknowledged records follow, so Open
// must refuse rather than silently lose them). The magic cannot occur inside a
// payload: 0xD9 followed by 'r' is invalid UTF-8, which encoding/json never
// emits.
const (
	frameHeader    = 12
	maxRecordBytes = 16 << 20
)

var (
	frameMagic = [4]byte{0xD9, 'r', 'j', 0x01}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

func appendFrame(dst, payload []byte) []byte {
	var hdr [frameHeader]byte
	copy(hdr[:4], frameMagic[:])
	binary.LittleEndian.PutUint32(hdr[4:8], uint32(len(payload)))
	crc := crc32.Update(0, castagnoli, hdr[4:8])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[8:12], crc)
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// decodeFrame returns the payload of the frame at the start of b and the
// frame's total length, or ok=false if b does not start with a complete,
// intact frame no longer than limit.
func decodeFrame(b []byte, limit int) (payload []byte, n int, ok bool) {
	if len(b) < frameHeader || !bytes.Equal(b[:4], frameMagic[:]) {
		return nil, 0, false
	}
	l := binary.LittleEndian.Uint32(b[4:8])
	if int64(l) > int64(limit) || int64(len(b)-frameHeader) < int64(l) {
		return nil, 0, false
	}
	crc := crc32.Update(0, castagnoli, b[4:8])
	crc = crc32.Update(crc, castagnoli, b[frameHeader:frameHeader+int(l)])
	if crc != binary.LittleEndian.Uint32(b[8:12]) {
		return nil, 0, false
	}
	return b[frameHeader : frameHeader+int(l)], frameHeader + int(l), true
}

// intactFrameAfter reports whether any intact frame starts after offset from.
func intactFrameAfter(b []byte, from int) (int, bool) {
	for i := from; i < len(b); {
		j := bytes.Index(b[i:], frameMagic[:])
		if j < 0 {
			return 0, false
		}
		if _, _, ok := decodeFrame(b[i+j:], maxRecordBytes); ok {
			return i + j, true
		}
		i += j + 1
	}
	return 0, false
}

// CorruptError reports damage in the middle of the journal or in the snapshot:
// intact, acknowledged data would have to be dropped to go on, so Open stops.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: %s is corrupt at byte %d: %s; refusing to drop acknowledged data (inspect or restore the state directory)", e.File, e.Offset, e.Reason)
}

// readJournal decodes every intact record and returns the length of the valid
// prefix. Damage with nothing intact after it is a torn tail from a write that
// was never acknowledged: it is reported through validLen < len(file), not as
// an error.
func readJournal(path string) (recs []*record, validLen int64, size int64, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, 0, nil
	}
	if err != nil {
		return nil, 0, 0, err
	}
	off := 0
	for off < len(b) {
		payload, n, ok := decodeFrame(b[off:], maxRecordBytes)
		if !ok {
			if at, more := intactFrameAfter(b, off+1); more {
				return nil, 0, 0, &CorruptError{File: path, Offset: int64(off),
					Reason: fmt.Sprintf("damaged record (record %d) followed by an intact one at byte %d", len(recs)+1, at)}
			}
			break
		}
		r := new(record)
		if err := json.Unmarshal(payload, r); err != nil {
			// The CRC matched, so these are the bytes that were written: a
			// bug or a foreign file, not a torn write.
			return nil, 0, 0, &CorruptError{File: path, Offset: int64(off), Reason: "undecodable record: " + err.Error()}
		}
		recs = append(recs, r)
		off += n
	}
	return recs, int64(off), int64(len(b)), nil
}

func readSnapshot(path string) (*snapshotData, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	payload, n, ok := decodeFrame(b, len(b))
	if !ok || n != len(b) {
		// The snapshot is fsynced before it is renamed into place, so unlike
		// the journal it can never be legitimately torn.
		return nil, &CorruptError{File: path, Reason: "snapshot frame damaged"}
	}
	sd := new(snapshotData)
	if err := json.Unmarshal(payload, sd); err != nil {
		return nil, &CorruptError{File: path, Reason: "undecodable snapshot: " + err.Error()}
	}
	return sd, nil
}

// writeSnapshot makes sd the durable snapshot: temp file, fsync, rename over
// the old one, fsync the directory. A crash at any step leaves either the old
// or the new snapshot, each consistent with the journal because records carry
// sequence numbers and replay skips those the snapshot already covers.
func writeSnapshot(dir string, sd *snapshotData) error {
	payload, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, snapshotFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(appendFrame(nil, payload))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, snapshotFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// diskRec and fileRec are the on-disk shapes of Disk and File. They are
// separate types with explicit tags so that changing the public structs (or
// giving them JSON tags for some API) can never silently change how existing
// journals are read.
type diskRec struct {
	ID        uint64    `json:"id"`
	Slot      string    `json:"slot"`
	FilePath  string    `json:"filePath"`
	FileSize  int64     `json:"fileSize"`
	Export    bool      `json:"nvmeTcpExport,omitempty"`
	Port      int       `json:"nvmeTcpServerPort,omitempty"`
	NQN       string    `json:"nvmeTcpServerNqn,omitempty"`
	AllowHost string    `json:"nvmeTcpServerAllowHostName,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Created   time.Time `json:"created"`
}

func toDiskRec(d *Disk) *diskRec {
	return &diskRec{d.ID, d.Slot, d.FilePath, d.FileSize, d.NVMeTCPExport, d.NVMeTCPServerPort,
		d.NVMeTCPServerNQN, d.NVMeTCPServerAllowHostName, d.Comment, d.Created}
}

func (r *diskRec) disk() Disk {
	return Disk{ID: r.ID, Slot: r.Slot, FilePath: r.FilePath, FileSize: r.FileSize,
		NVMeTCPExport: r.Export, NVMeTCPServerPort: r.Port, NVMeTCPServerNQN: r.NQN,
		NVMeTCPServerAllowHostName: r.AllowHost, Comment: r.Comment, Created: r.Created}
}

type fileRec struct {
	Name         string    `json:"name"`
	Size         int64     `json:"size,omitempty"`
	LastModified time.Time `json:"lastModified"`
	Dir          bool      `json:"dir,omitempty"`
}

func marshalRecord(r *record) ([]byte, error) { return json.Marshal(r) }
