// metalgpu runtime: metal::array<T, N> (Metal's std::array look-alike, usable in every
// address space) and array_ref<T>.
#pragma once

namespace metal {

template<class T, size_t N> struct array {
  T mg_elems[N > 0 ? N : 1];

  typedef T value_type;
  typedef size_t size_type;
  typedef T& reference;
  typedef const T& const_reference;
  typedef T* iterator;
  typedef const T* const_iterator;

  MG_FN constexpr size_t size() const { return N; }
  MG_FN constexpr size_t max_size() const { return N; }
  MG_FN constexpr bool empty() const { return N == 0; }
  MG_FN constexpr T& operator[](size_t i) { return mg_elems[i]; }
  MG_FN constexpr const T& operator[](size_t i) const { return mg_elems[i]; }
  MG_FN constexpr T& at(size_t i) { return mg_elems[i]; }
  MG_FN constexpr const T& at(size_t i) const { return mg_elems[i]; }
  MG_FN constexpr T& front() { return mg_elems[0]; }
  MG_FN constexpr const T& front() const { return mg_elems[0]; }
  MG_FN constexpr T& back() { return mg_elems[N - 1]; }
  MG_FN constexpr const T& back() const { return mg_elems[N - 1]; }
  MG_FN constexpr T* data() { return mg_elems; }
  MG_FN constexpr const T* data() const { return mg_elems; }
  MG_FN constexpr T* begin() { return mg_elems; }
  MG_FN constexpr const T* begin() const { return mg_elems; }
  MG_FN constexpr T* end() { return mg_elems + N; }
  MG_FN constexpr const T* end() const { return mg_elems + N; }
  MG_FN constexpr const T* cbegin() const { return mg_elems; }
  MG_FN constexpr const T* cend() const { return mg_elems + N; }
  MG_FN void fill(const T& v) {
    for (size_t i = 0; i < N; ++i) mg_elems[i] = v;
  }
};
template<class T, size_t N> struct mg_layout_align_of<array<T, N>> : mg_layout_align_of<T> {};

template<class T, class... U> array(T, U...) -> array<T, 1 + sizeof...(U)>;

template<class T, size_t N> MG_FN constexpr bool operator==(const array<T, N>& a, const array<T, N>& b) {
  for (size_t i = 0; i < N; ++i)
    if (!(a[i] == b[i])) return false;
  return true;
}
template<class T, size_t N> MG_FN constexpr bool operator!=(const array<T, N>& a, const array<T, N>& b) {
  return !(a == b);
}

// A view of contiguous elements (Metal's array_ref).
template<class T> struct array_ref {
  const T* mg_ptr;
  size_t mg_size;
  typedef T value_type;
  MG_FN constexpr array_ref() : mg_ptr(nullptr), mg_size(0) {}
  MG_FN constexpr array_ref(const T* p, size_t n) : mg_ptr(p), mg_size(n) {}
  template<size_t N> MG_FN constexpr array_ref(const array<T, N>& a) : mg_ptr(a.data()), mg_size(N) {}
  template<size_t N> MG_FN constexpr array_ref(const T (&a)[N]) : mg_ptr(a), mg_size(N) {}
  MG_FN constexpr size_t size() const { return mg_size; }
  MG_FN constexpr bool empty() const { return mg_size == 0; }
  MG_FN constexpr const T& operator[](size_t i) const { return mg_ptr[i]; }
  MG_FN constexpr const T* data() const { return mg_ptr; }
  MG_FN constexpr const T* begin() const { return mg_ptr; }
  MG_FN constexpr const T* end() const { return mg_ptr + mg_size; }
};

} // namespace metal
