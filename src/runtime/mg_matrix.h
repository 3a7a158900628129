// metalgpu runtime: matrix<T, Cols, Rows>, stored as Cols column vectors (Metal's layout).
#pragma once

namespace metal {

template<class T, int C, int R> struct matrix;
template<class T, int C, int R> struct is_vector<matrix<T, C, R>> : false_type {};

template<class T, int C, int R> struct mg_layout_align_of<matrix<T, C, R>> : mg_layout_align_of<vec<T, R>> {};

template<class X, class T, int R> struct mg_is_col : false_type {};
template<class T, int R, bool P> struct mg_is_col<mg_basic_vec<T, R, P>, T, R> : true_type {};

template<class T, int C, int R> struct matrix {
  typedef T value_type;
  vec<T, R> columns[C];

  matrix() = default;
  // Diagonal matrix.
  template<class S, enable_if_t<is_arithmetic<S>::value, int> = 0> MG_FN explicit matrix(S s) {
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) columns[c][r] = (c == r) ? T(s) : T(0);
  }
  // From C columns.
  template<class... V, enable_if_t<sizeof...(V) == C && (mg_is_col<V, T, R>::value && ...), int> = 0>
  MG_FN constexpr matrix(const V&... v) : columns{vec<T, R>(v)...} {}
  // From C*R scalars, column major.
  template<class... S, enable_if_t<sizeof...(S) == C * R && (is_arithmetic<S>::value && ...), int> = 0>
  MG_FN matrix(S... s) {
    const T a[C * R] = {T(s)...};
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < R; ++r) columns[c][r] = a[c * R + r];
  }
  template<class U, enable_if_t<!is_same<U, T>::value, int> = 0>
  MG_FN explicit matrix(const matrix<U, C, R>& o) {
    for (int c = 0; c < C; ++c) columns[c] = vec<T, R>(o.columns[c]);
  }
  MG_FN vec<T, R>& operator[](int c) { return columns[c]; }
  MG_FN const vec<T, R>& operator[](int c) const { return columns[c]; }

  template<class U> MG_FN matrix& operator+=(const U& o) { return *this = *this + o; }
  template<class U> MG_FN matrix& operator-=(const U& o) { return *this = *this - o; }
  template<class U> MG_FN matrix& operator*=(const U& o) { return *this = *this * o; }
  template<class U> MG_FN matrix& operator/=(const U& o) { return *this = *this / o; }
};

template<class T, int C, int R>
MG_FN matrix<T, C, R> operator+(const matrix<T, C, R>& a, const matrix<T, C, R>& b) {
  matrix<T, C, R> m;
  for (int c = 0; c < C; ++c) m.columns[c] = a.columns[c] + b.columns[c];
  return m;
}
template<class T, int C, int R>
MG_FN matrix<T, C, R> operator-(const matrix<T, C, R>& a, const matrix<T, C, R>& b) {
  matrix<T, C, R> m;
  for (int c = 0; c < C; ++c) m.columns[c] = a.columns[c] - b.columns[c];
  return m;
}
template<class T, int C, int R> MG_FN matrix<T, C, R> operator-(const matrix<T, C, R>& a) {
  matrix<T, C, R> m;
  for (int c = 0; c < C; ++c) m.columns[c] = -a.columns[c];
  return m;
}
template<class T, int C, int R, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>
MG_FN matrix<T, C, R> operator*(const matrix<T, C, R>& a, S s) {
  matrix<T, C, R> m;
  for (int c = 0; c < C; ++c) m.columns[c] = a.columns[c] * T(s);
  return m;
}
template<class T, int C, int R, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>
MG_FN matrix<T, C, R> operator*(S s, const matrix<T, C, R>& a) { return a * s; }
template<class T, int C, int R, class S, enable_if_t<is_arithmetic<S>::value, int> = 0>
MG_FN matrix<T, C, R> operator/(const matrix<T, C, R>& a, S s) {
  matrix<T, C, R> m;
  for (int c = 0; c < C; ++c) m.columns[c] = a.columns[c] / T(s);
  return m;
}
// matrix * column vector
template<class T, int C, int R, bool P>
MG_FN vec<T, R> operator*(const matrix<T, C, R>& m, const mg_basic_vec<T, C, P>& v) {
  vec<T, R> r = m.columns[0] * v.x;
  for (int c = 1; c < C; ++c) r += m.columns[c] * v[c];
  return r;
}
// row vector * matrix
template<class T, int C, int R, bool P>
MG_FN vec<T, C> operator*(const mg_basic_vec<T, R, P>& v, const matrix<T, C, R>& m) {
  vec<T, C> out;
  for (int c = 0; c < C; ++c) {
    T s = v.x * m.columns[c].x;
    for (int r = 1; r < R; ++r) s += v[r] * m.columns[c][r];
    out[c] = s;
  }
  return out;
}
template<class T, int C, int R, int K>
MG_FN matrix<T, K, R> operator*(const matrix<T, C, R>& a, const matrix<T, K, C>& b) {
  matrix<T, K, R> m;
  for (int k = 0; k < K; ++k) m.columns[k] = a * b.columns[k];
  return m;
}
template<class T, int C, int R>
MG_FN bool operator==(const matrix<T, C, R>& a, const matrix<T, C, R>& b) {
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r)
      if (!(a.columns[c][r] == b.columns[c][r])) return false;
  return true;
}
template<class T, int C, int R>
MG_FN bool operator!=(const matrix<T, C, R>& a, const matrix<T, C, R>& b) { return !(a == b); }

template<class T, int C, int R> MG_FN matrix<T, R, C> transpose(const matrix<T, C, R>& a) {
  matrix<T, R, C> m;
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < R; ++r) m.columns[r][c] = a.columns[c][r];
  return m;
}
template<class T> MG_FN T determinant(const matrix<T, 2, 2>& m) {
  return m.columns[0].x * m.columns[1].y - m.columns[1].x * m.columns[0].y;
}
template<class T> MG_FN T mg_det3(T a, T b, T c, T d, T e, T f, T g, T h, T i) {
  // | a d g |
  // | b e h |   (arguments column major)
  // | c f i |
  return a * (e * i - h * f) - d * (b * i - h * c) + g * (b * f - e * c);
}
template<class T> MG_FN T determinant(const matrix<T, 3, 3>& m) {
  const vec<T, 3>& a = m.columns[0];
  const vec<T, 3>& b = m.columns[1];
  const vec<T, 3>& c = m.columns[2];
  return mg_det3(a.x, a.y, a.z, b.x, b.y, b.z, c.x, c.y, c.z);
}
template<class T> MG_FN T determinant(const matrix<T, 4, 4>& m) {
  // Laplace expansion along the first column.
  const vec<T, 4>& a = m.columns[0];
  const vec<T, 4>& b = m.columns[1];
  const vec<T, 4>& c = m.columns[2];
  const vec<T, 4>& d = m.columns[3];
  return a.x * mg_det3(b.y, b.z, b.w, c.y, c.z, c.w, d.y, d.z, d.w)
       - a.y * mg_det3(b.x, b.z, b.w, c.x, c.z, c.w, d.x, d.z, d.w)
       + a.z * mg_det3(b.x, b.y, b.w, c.x, c.y, c.w, d.x, d.y, d.w)
       - a.w * mg_det3(b.x, b.y, b.z, c.x, c.y, c.z, d.x, d.y, d.z);
}

#define MG_MAT_TYPEDEFS(T)                                                                       \
  typedef matrix<T, 2, 2> T##2x2; typedef matrix<T, 2, 3> T##2x3; typedef matrix<T, 2, 4> T##2x4; \
  typedef matrix<T, 3, 2> T##3x2; typedef matrix<T, 3, 3> T##3x3; typedef matrix<T, 3, 4> T##3x4; \
  typedef matrix<T, 4, 2> T##4x2; typedef matrix<T, 4, 3> T##4x3; typedef matrix<T, 4, 4> T##4x4;
MG_MAT_TYPEDEFS(float)
MG_MAT_TYPEDEFS(half)
#undef MG_MAT_TYPEDEFS

} // namespace metal

#define MG_MAT_USING(T)                                                                          \
  using metal::T##2x2; using metal::T##2x3; using metal::T##2x4;                                 \
  using metal::T##3x2; using metal::T##3x3; using metal::T##3x4;                                 \
  using metal::T##4x2; using metal::T##4x3; using metal::T##4x4;
MG_MAT_USING(float)
MG_MAT_USING(half)
#undef MG_MAT_USING
