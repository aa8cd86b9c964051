"""The sync task: LRS2, VocaLiST teachers, MTDVocaLiST students, 31-candidate retrieval."""
