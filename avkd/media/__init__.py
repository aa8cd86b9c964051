"""Media: decoding (decord, PyAV), mp4 writing, audio transforms and the VocaLiST mel, face detection and crops."""
