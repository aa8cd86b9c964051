"""The emotion task: CMU-MOSEI, the MulT teacher, video-only students, 7-class emotion."""
