// A line plot written as a PNG with no dependency: an RGB canvas, axes with tick labels, polylines and a
// legend in a built-in 5x7 pixel font, encoded with stored (uncompressed) deflate blocks. Enough for the
// reward/accuracy-per-step plot of a run; not a plotting library.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace rlvr {

struct PlotSeries {
  std::string name;
  std::vector<double> x, y;
  unsigned rgb = 0x1f77b4;  // line colour
  bool markers = false;     // draw a small square at each point
};

// Writes `path` (atomically). The y range covers every series and [y_min, y_max] when given (NaN = auto).
void write_line_plot(const std::filesystem::path& path, const std::string& title, const std::string& x_label,
                     const std::vector<PlotSeries>& series, double y_min = 0.0, double y_max = 1.0,
                     int width = 800, int height = 480);

// PNG bytes of an RGB image (rows top to bottom, 3 bytes per pixel).
std::string encode_png_rgb(const std::vector<unsigned char>& rgb, int width, int height);

}  // namespace rlvr
