"""``python -m poolkit``: print the configuration and run the worked examples."""

import numpy as np

import poolkit


def main() -> None:
    poolkit.show_config()
    x = np.array([[[[1.0, 3.0], [2.0, 2.0]]]])
    print("\nworked examples on x = [[1, 3], [2, 2]], 2x2 windows:")
    values, indices = poolkit.max_pool2d(x, 2, return_indices=True)
    print(f"  max  forward  -> {values[0, 0].tolist()}  argmax index {indices[0, 0].tolist()}")
    g = np.array([[[[3.0]]]])
    print(f"  max  backward of [[3]] -> {poolkit.max_pool2d_backward(g, indices, x.shape)[0, 0].tolist()}")
    print(f"  mean forward  -> {poolkit.avg_pool2d(x, 2)[0, 0].tolist()}")
    g = np.array([[[[2.0]]]])
    print(f"  mean backward of [[2]] -> {poolkit.avg_pool2d_backward(g, x.shape, 2)[0, 0].tolist()}")


if __name__ == "__main__":
    main()
