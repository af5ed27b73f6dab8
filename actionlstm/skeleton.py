"""COCO-17 skeleton layout shared by the data, the augmentations and the overlay."""

# Joints, in order: nose, left/right eye, left/right ear, left/right shoulder, left/right elbow,
# left/right wrist, left/right hip, left/right knee, left/right ankle.
NUM_JOINTS = 17

# Parent of each joint in a tree rooted at the nose; bones are joint - parent (the root's bone is zero).
PARENTS = (0, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)

# The left joints (eye, ear, shoulder ... ankle): COCO-17 numbers them odd. For drawing left and right apart.
LEFT = frozenset(range(1, NUM_JOINTS, 2))

# Index of each joint's mirror image, for left/right flips.
FLIP_INDEX = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

# Limbs drawn by the overlay (pairs of joint indices).
LIMBS = (
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 6),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
)
