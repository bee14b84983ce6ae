package wandbfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// layoutProbeSize is how many bytes after the file header the reader looks
// ahead to tell the two block layouts apart: three full blocks of either.
const layoutProbeSize = 3 * BlockSize

// legacyGridOffset is where blocks start in files written by wandb-core
// before 0.17.6: the file header sat outside the block grid.
const legacyGridOffset = FileHeaderSize

// detectGrid peeks at the bytes after the file header (src must be positioned
// right after it) and returns the offset of the block grid: 0 for the
// standard layout, legacyGridOffset for the pre-0.17.6 wandb-core layout.
//
// Each layout is scored by walking the first blocks the way the reader
// would: in every block, the well-formed chunks from the block's start are
// counted until the first bad one. The layouts agree until near the first
// block boundary; there the wrong one meets a chunk that crosses its block
// end, or a chunk header in the middle of data, and loses. Counting per
// block keeps the decision right when one block is damaged. A tie (including
// every file shorter than one block, where the layouts are identical) means
// the standard layout.
func detectGrid(src *bufio.Reader) (int64, error) {
	data, err := src.Peek(min(layoutProbeSize, src.Size()))
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if int64(len(data)) <= BlockSize-FileHeaderSize {
		// All of it lies in block 0 of either grid, which the layouts
		// share: the scores would tie. Most logs of short runs end here
		// unscored (a sync's plan opens every log).
		return 0, nil
	}
	if gridScore(data, legacyGridOffset) > gridScore(data, 0) {
		return legacyGridOffset, nil
	}
	return 0, nil
}

// gridScore counts the well-formed chunks found at the start of each block
// of the peeked data under the given grid.
func gridScore(data []byte, grid int64) int {
	score := 0
	for k := int64(0); ; k++ {
		start := max(blockDataStart(grid, k), 0)
		if start >= int64(len(data)) {
			return score
		}
		score += validChunks(data, start, blockDataStart(grid, k+1))
	}
}

// blockDataStart is the index in the peeked data (which starts at file offset
// FileHeaderSize) of block k under the given grid. For block 0 of the
// standard grid it is negative: that block starts inside the file header.
func blockDataStart(grid, k int64) int64 {
	return grid + k*BlockSize - FileHeaderSize
}

// validChunks counts the consecutive well-formed chunks (known type, within
// the block, checksum matches) from start in a block ending at blockEnd.
func validChunks(data []byte, start, blockEnd int64) int {
	end := min(blockEnd, int64(len(data)))
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
