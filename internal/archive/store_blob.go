package archive

import "errors"

func openBlobStore(location string) (Store, error) {
	return nil, errors.New("object storage is not supported yet")
}
