package wandbfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// layoutProbeSize is how many bytes after the file header the reader looks
// ahead to tell the two block layouts apart.
const layoutProbeSize = 4 * BlockSize

// legacyGridOffset is where blocks start in files written by wandb-core
// before 0.17.6: the file header sat outside the block grid.
const legacyGridOffset = FileHeaderSize

// detectGrid peeks at the bytes after the file header (src must be positioned
// right after it) and returns the offset of the block grid: 0 for the
// standard layout, legacyGridOffset for the pre-0.17.6 wandb-core layout.
//
// Both layouts agree until the first block boundary, so the decision looks at
// the chunks that start at block boundaries 1, 2 and 3 under each layout. The
// first boundary where one layout finds more valid chunks than the other
// decides; a tie everywhere (including files shorter than one block, where
// the layouts are identical) means the standard layout.
func detectGrid(src *bufio.Reader) (int64, error) {
	data, err := src.Peek(layoutProbeSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	for k := int64(1); k < layoutProbeSize/BlockSize; k++ {
		standard := validChunksInBlock(data, 0, k)
		legacy := validChunksInBlock(data, legacyGridOffset, k)
		if standard == 0 && legacy == 0 && blockDataStart(0, k) >= int64(len(data)) {
			break
		}
		if legacy > standard {
			return legacyGridOffset, nil
		}
		if standard > legacy {
			return 0, nil
		}
	}
	return 0, nil
}

// blockDataStart is the index in the peeked data (which starts at file offset
// FileHeaderSize) of block k under the given grid.
func blockDataStart(grid, k int64) int64 {
	return grid + k*BlockSize - FileHeaderSize
}

// validChunksInBlock counts the consecutive well-formed chunks (known type,
// fits the block, checksum matches) at the start of block k under the given
// grid, within the peeked data.
func validChunksInBlock(data []byte, grid, k int64) int {
	start := blockDataStart(grid, k)
	end := min(start+BlockSize, int64(len(data)))
	count := 0
	for pos := start; end-pos >= ChunkHeaderSize; {
		hdr := data[pos : pos+ChunkHeaderSize]
		sum := binary.LittleEndian.Uint32(hdr[0:4])
		length := int64(binary.LittleEndian.Uint16(hdr[4:6]))
		typ := hdr[6]
		if typ < chunkFull || typ > chunkLast || pos+ChunkHeaderSize+length > end {
			break
		}
		payload := data[pos+ChunkHeaderSize : pos+ChunkHeaderSize+length]
		if chunkChecksum(typ, payload) != sum {
			break
		}
		count++
		pos += ChunkHeaderSize + length
	}
	return count
}
