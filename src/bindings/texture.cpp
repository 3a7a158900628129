#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings/bindings.hpp"
#include "core/backend.hpp"

namespace metalgpu::bindings {
namespace {

std::string type_name(py::handle v) { return py::str(py::type::of(v).attr("__name__")).cast<std::string>(); }

py::dtype texture_dtype(const TextureFormat& f) {
  return py::dtype(std::string(1, f.numpy_kind) + std::to_string(f.channel_bytes));
}

// (height, width, channels) for 2D, (width, channels) for 1D, (depth, height, width, channels)
// for 3D, (layers, [height,] width, channels) for arrays.
std::vector<py::ssize_t> texture_shape(const Texture& t) {
  const py::ssize_t w = t.width(), h = t.height(), d = t.depth(), a = t.array_length(), c = t.format().channels;
  switch (t.type()) {
    case TextureType::tex1d: return {w, c};
    case TextureType::tex1d_array: return {a, w, c};
    case TextureType::tex2d: return {h, w, c};
    case TextureType::tex2d_array: return {a, h, w, c};
    case TextureType::tex3d: return {d, h, w, c};
  }
  return {w, c};
}

std::vector<py::ssize_t> strides_for(const std::vector<py::ssize_t>& shape, py::ssize_t item) {
  std::vector<py::ssize_t> s(shape.size());
  py::ssize_t acc = item;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

py::object make_texture_contents(PyTexture& t) {
  void* ptr = t.texture.contents();  // throws if released or private; syncs device -> host
  if (!t.contents_cache.is_none()) return t.contents_cache;
  auto alloc = t.texture.allocation();
  py::capsule owner = view_owner(alloc);
  auto shape = texture_shape(t.texture);
  py::array arr(texture_dtype(t.texture.format()), shape, strides_for(shape, t.texture.format().channel_bytes), ptr,
                owner);
  t.contents_cache = arr;
  return arr;
}

py::object texture_readback(PyTexture& t) {
  py::array out(texture_dtype(t.texture.format()), texture_shape(t.texture));
  t.texture.readback(out.mutable_data(), t.texture.nbytes());
  return out;
}

TextureType parse_type(const std::string& s) {
  if (s == "1d" || s == "texture1d") return TextureType::tex1d;
  if (s == "1d_array" || s == "texture1d_array") return TextureType::tex1d_array;
  if (s == "2d" || s == "texture2d") return TextureType::tex2d;
  if (s == "2d_array" || s == "texture2d_array") return TextureType::tex2d_array;
  if (s == "3d" || s == "texture3d") return TextureType::tex3d;
  throw std::invalid_argument("[create_texture] texture_type must be \"1d\", \"1d_array\", \"2d\", \"2d_array\" or "
                              "\"3d\"; got '" + s + "'");
}

const char* short_type(TextureType t) {
  switch (t) {
    case TextureType::tex1d: return "1d";
    case TextureType::tex1d_array: return "1d_array";
    case TextureType::tex2d: return "2d";
    case TextureType::tex2d_array: return "2d_array";
    case TextureType::tex3d: return "3d";
  }
  return "2d";
}

std::uint32_t dim(py::handle v, const char* what) {
  return std::uint32_t(checked_int(v, std::string("[create_texture] ") + what, 1, 0xffffffffu));
}

Sampler make_sampler(const std::string& filter, const std::string& address, bool normalized) {
  Sampler s;
  if (filter == "nearest") s.filter = Sampler::Filter::nearest;
  else if (filter == "linear") s.filter = Sampler::Filter::linear;
  else throw std::invalid_argument("[create_sampler] filter must be \"nearest\" or \"linear\"; got '" + filter + "'");
  if (address == "clamp_to_edge") s.address = Sampler::Address::clamp_to_edge;
  else if (address == "repeat") s.address = Sampler::Address::repeat;
  else if (address == "mirrored_repeat") s.address = Sampler::Address::mirrored_repeat;
  else if (address == "clamp_to_zero") s.address = Sampler::Address::clamp_to_zero;
  else
    throw std::invalid_argument("[create_sampler] address must be \"clamp_to_edge\", \"repeat\", "
                                "\"mirrored_repeat\" or \"clamp_to_zero\"; got '" + address + "'");
  s.normalized = normalized;
  return s;
}

const char* address_name(Sampler::Address a) {
  switch (a) {
    case Sampler::Address::clamp_to_edge: return "clamp_to_edge";
    case Sampler::Address::repeat: return "repeat";
    case Sampler::Address::mirrored_repeat: return "mirrored_repeat";
    case Sampler::Address::clamp_to_zero: return "clamp_to_zero";
    case Sampler::Address::clamp_to_border: return "clamp_to_border";
  }
  return "clamp_to_edge";
}

}  // namespace

std::vector<Texture> to_textures(py::object list) {
  std::vector<Texture> out;
  if (list.is_none()) return out;
  if (!py::isinstance<py::list>(list) && !py::isinstance<py::tuple>(list))
    throw TypeMismatch("[run_function] textures must be a list; got " + type_name(list));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(list);
  if (seq.size() > MG_MAX_TEXTURES)
    throw std::invalid_argument("[run_function] " + std::to_string(seq.size()) +
                                " textures given; there are 16 texture slots (0..15)");
  for (std::size_t i = 0; i < seq.size(); ++i) {
    py::object item = seq[i];
    if (item.is_none()) {
      out.emplace_back();
      continue;
    }
    if (!py::isinstance<PyTexture>(item))
      throw TypeMismatch("[run_function] textures[" + std::to_string(i) + "] must be a Texture or None; got " +
                         type_name(item));
    auto& t = item.cast<PyTexture&>();
    if (!t.contents_cache.is_none() && Py_REFCNT(t.contents_cache.ptr()) == 1) t.drop_cache();
    out.push_back(t.texture);
  }
  return out;
}

std::vector<std::optional<Sampler>> to_samplers(py::object list) {
  std::vector<std::optional<Sampler>> out;
  if (list.is_none()) return out;
  if (!py::isinstance<py::list>(list) && !py::isinstance<py::tuple>(list))
    throw TypeMismatch("[run_function] samplers must be a list; got " + type_name(list));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(list);
  if (seq.size() > MG_MAX_SAMPLERS)
    throw std::invalid_argument("[run_function] " + std::to_string(seq.size()) +
                                " samplers given; there are 16 sampler slots (0..15)");
  for (std::size_t i = 0; i < seq.size(); ++i) {
    py::object item = seq[i];
    if (item.is_none()) {
      out.emplace_back();
      continue;
    }
    if (!py::isinstance<Sampler>(item))
      throw TypeMismatch("[run_function] samplers[" + std::to_string(i) + "] must be a Sampler or None; got " +
                         type_name(item));
    out.emplace_back(item.cast<Sampler>());
  }
  return out;
}

void init_texture(py::module_& m) {
  py::class_<Sampler>(m, "Sampler", "How sample() reads a texture: filter, address mode, coordinates.")
      .def(py::init(&make_sampler), py::kw_only(), py::arg("filter") = "nearest", py::arg("address") = "clamp_to_edge",
           py::arg("normalized") = true,
           "filter: \"nearest\" or \"linear\"; address: \"clamp_to_edge\", \"repeat\", \"mirrored_repeat\" or "
           "\"clamp_to_zero\"; normalized: coordinates in [0, 1] (else in texels). ValueError for other names.")
      .def_property_readonly("filter", [](const Sampler& s) {
        return s.filter == Sampler::Filter::linear ? "linear" : "nearest";
      }, "\"nearest\" or \"linear\".")
      .def_property_readonly("address", [](const Sampler& s) { return address_name(s.address); },
                             "The address mode of all three axes (\"clamp_to_edge\", \"repeat\", ...).")
      .def_readonly("normalized", &Sampler::normalized, "True: coordinates in [0, 1]; False: in texels.")
      .def("__eq__", [](const Sampler& a, const Sampler& b) { return a.bits() == b.bits(); },
           "Equal when filter, address and normalized are.")
      .def("__hash__", [](const Sampler& s) { return s.bits(); }, "Hash of filter, address and normalized.")
      .def("__repr__", [](const Sampler& s) {
        return std::string("Sampler(filter=\"") + (s.filter == Sampler::Filter::linear ? "linear" : "nearest") +
               "\", address=\"" + address_name(s.address) + "\", normalized=" + (s.normalized ? "True" : "False") +
               ")";
      }, "Sampler(filter=..., address=..., normalized=...).");

  py::class_<PyTexture>(m, "Texture",
                        "An image kernels read, write and sample. `.contents` is a numpy view of its texels.")
      .def_property_readonly("contents", &make_texture_contents,
                             "numpy array aliasing the texels (no copy): (height, width, channels) for 2D")
      // Raw transfers; metalgpu/_transfers.py builds upload/readback/copy_to's conversions on them.
      .def("_readback", &texture_readback, "A copy of the texels as a new numpy array.")
      .def("_write", [](PyTexture& t, py::handle data, std::size_t offset) {
        HostBytes bytes(data, false, "[Texture.upload]");
        t.texture.upload(bytes.data(), bytes.size(), offset);
      }, py::arg("data"), py::arg("offset"), "Writes the bytes of `data` at byte `offset`.")
      .def("_read_into", [](PyTexture& t, py::handle out, std::size_t offset) {
        HostBytes bytes(out, true, "[Texture.readback]");
        t.texture.readback(bytes.data(), bytes.size(), offset);
      }, py::arg("out"), py::arg("offset"), "Fills `out` with the bytes from byte `offset` on.")
      .def("_copy_to", [](PyTexture& t, py::handle other) {
        if (py::isinstance<PyTexture>(other)) return t.texture.copy_to(other.cast<PyTexture&>().texture);
        if (py::isinstance<PyBuffer>(other)) {
          auto& b = other.cast<PyBuffer&>();
          t.texture.copy_to(b.buffer);
          return;
        }
        throw TypeMismatch("[Texture.copy_to] the destination must be a Texture or a Buffer; got " + type_name(other) +
                           " (numpy arrays: tex.readback(out=array))");
      }, py::arg("other"), "Copies into a Texture (same type, size and format) or a Buffer (the texels' bytes).")
      .def("release", [](PyTexture& t) {
        t.drop_cache();
        t.texture.release();
      }, "Frees the texture; later use raises ValueError. Views taken earlier stay valid.")
      .def_property_readonly("released", [](const PyTexture& t) { return t.texture.released(); },
                             "True after release() (or once the texture's Interface is gone).")
      .def_property_readonly("width", [](const PyTexture& t) { return t.texture.width(); }, "Texels along x.")
      .def_property_readonly("height", [](const PyTexture& t) { return t.texture.height(); },
                             "Texels along y (1 for 1d textures).")
      .def_property_readonly("depth", [](const PyTexture& t) { return t.texture.depth(); },
                             "Texels along z (1 unless 3d).")
      .def_property_readonly("array_length", [](const PyTexture& t) { return t.texture.array_length(); },
                             "Layers of an array texture (1 otherwise).")
      .def_property_readonly("format", [](const PyTexture& t) { return t.texture.format().name; },
                             "The texel format, named like Metal's pixel formats (\"rgba32float\", \"r8unorm\" ...).")
      .def_property_readonly("channels", [](const PyTexture& t) { return t.texture.format().channels; },
                             "Channels per texel: 1, 2 or 4.")
      .def_property_readonly("texture_type", [](const PyTexture& t) { return short_type(t.texture.type()); },
                             "\"1d\", \"1d_array\", \"2d\", \"2d_array\" or \"3d\".")
      .def_property_readonly("dtype", [](const PyTexture& t) { return texture_dtype(t.texture.format()); },
                             "The numpy dtype of one channel as stored (uint8 for rgba8unorm, float16 for r16float ...).")
      .def_property_readonly("shape", [](const PyTexture& t) { return py::tuple(py::cast(texture_shape(t.texture))); },
                             "The shape of .contents: (height, width, channels) for 2d, (width, channels) for 1d, "
                             "(depth, height, width, channels) for 3d, layers first for arrays.")
      .def_property_readonly("nbytes", [](const PyTexture& t) { return t.texture.nbytes(); },
                             "Size in bytes (texels packed row by row).")
      .def_property_readonly("storage", [](const PyTexture& t) {
        return t.texture.storage() == Storage::shared ? "shared" : "private";
      }, "\"shared\" (host-visible, .contents works) or \"private\" (device only).")
      .def_property_readonly("interface", [](const PyTexture& t) -> py::object {
        if (t.interface_ref.is_none()) return py::none();
        return t.interface_ref();
      }, "The Interface that made the texture, or None once it is gone.")
      .def("__repr__", [](const PyTexture& t) {
        std::string s = "<metalgpu.Texture " + std::string(short_type(t.texture.type())) + " ";
        auto shape = texture_shape(t.texture);
        for (std::size_t i = 0; i + 1 < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
        return s + " " + t.texture.format().name + (t.texture.released() ? " (released)>" : ">");
      }, "<metalgpu.Texture type shape format>.");

  m.attr("texture_formats") = py::cast(TextureFormat::names());

  auto iface = py::reinterpret_borrow<py::class_<Interface>>(m.attr("Interface"));
  iface.def("create_texture", [](py::object self, py::handle width, py::object height, py::object depth,
                                 const std::string& format, py::object array_length, py::object texture_type,
                                 const std::string& storage) {
    // API.md: create_texture(width, height=1, depth=1, format): 2d unless a depth above 1 makes
    // it 3d or array_length makes it an array; texture_type= names any type explicitly.
    TextureDesc d;
    d.width = dim(width, "width");
    d.height = dim(height, "height");
    d.depth = dim(depth, "depth");
    if (!array_length.is_none()) d.array_length = dim(array_length, "array_length");
    d.format = format;
    if (!texture_type.is_none()) {
      d.type = parse_type(texture_type.cast<std::string>());
    } else if (!array_length.is_none()) {
      d.type = TextureType::tex2d_array;
    } else if (d.depth > 1) {
      d.type = TextureType::tex3d;
    } else {
      d.type = TextureType::tex2d;
    }
    if (storage == "shared") d.storage = Storage::shared;
    else if (storage == "private") d.storage = Storage::device_private;
    else throw std::invalid_argument("[create_texture] storage must be \"shared\" or \"private\"; got '" + storage + "'");
    auto& i = self.cast<Interface&>();
    PyTexture t{i.create_texture(d), py::weakref(self), py::none()};
    return t;
  }, py::arg("width"), py::arg("height") = 1, py::arg("depth") = 1,
     py::arg("format") = "rgba32float", py::kw_only(), py::arg("array_length") = py::none(),
     py::arg("texture_type") = py::none(), py::arg("storage") = "shared",
     "A zero-filled texture: 2d, 3d when depth > 1, 2d_array with array_length; texture_type= names "
     "any type (\"1d\", \"1d_array\", \"2d\", \"2d_array\", \"3d\"). A 2d texture of height 1 also "
     "binds to texture1d parameters.");
  iface.def("create_sampler", [](py::object, const std::string& filter, const std::string& address, bool normalized) {
    return make_sampler(filter, address, normalized);
  }, py::kw_only(), py::arg("filter") = "nearest", py::arg("address") = "clamp_to_edge", py::arg("normalized") = true,
     "A Sampler (the same as metalgpu.Sampler(...)), for run_function(samplers=[...]).");
}

}  // namespace metalgpu::bindings
