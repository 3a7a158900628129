// metalgpu runtime: type traits (no C++ standard library).
#pragma once

namespace metal {

template<class T, T V> struct integral_constant {
  static constexpr T value = V;
  typedef T value_type;
  typedef integral_constant type;
  MG_FN constexpr operator T() const { return V; }
  MG_FN constexpr T operator()() const { return V; }
};
typedef integral_constant<bool, true> true_type;
typedef integral_constant<bool, false> false_type;
template<bool B> using bool_constant = integral_constant<bool, B>;

template<bool B, class T = void> struct enable_if {};
template<class T> struct enable_if<true, T> { typedef T type; };
template<bool B, class T = void> using enable_if_t = typename enable_if<B, T>::type;

template<class A, class B> struct is_same : false_type {};
template<class A> struct is_same<A, A> : true_type {};
template<class A, class B> constexpr bool is_same_v = is_same<A, B>::value;

// Address spaces are not part of types here: removing one leaves the type as it is (Apple's
// name; MLX's integral_constant.h uses remove_addrspace_t).
template<class T> struct remove_addrspace { typedef T type; };
template<class T> using remove_addrspace_t = typename remove_addrspace<T>::type;
template<bool B, class T, class F> struct conditional { typedef T type; };
template<class T, class F> struct conditional<false, T, F> { typedef F type; };
// Apple's metal_type_traits spells these with a leading underscore (MLX uses them).
template<class... B> struct _disjunction : false_type {};
template<class B, class... R> struct _disjunction<B, R...>
    : conditional<bool(B::value), B, _disjunction<R...>>::type {};
template<class... B> struct _conjunction : true_type {};
template<class B, class... R> struct _conjunction<B, R...>
    : conditional<bool(B::value), _conjunction<R...>, B>::type {};
template<bool B, class T, class F> using conditional_t = typename conditional<B, T, F>::type;

template<class T> struct remove_reference { typedef T type; };
template<class T> struct remove_reference<T&> { typedef T type; };
template<class T> struct remove_reference<T&&> { typedef T type; };
template<class T> using remove_reference_t = typename remove_reference<T>::type;

template<class T> struct remove_pointer { typedef T type; };
template<class T> struct remove_pointer<T*> { typedef T type; };
template<class T> struct remove_pointer<T* const> { typedef T type; };
template<class T> struct remove_pointer<T* volatile> { typedef T type; };
template<class T> struct remove_pointer<T* const volatile> { typedef T type; };
template<class T> using remove_pointer_t = typename remove_pointer<T>::type;

template<class T> struct remove_const { typedef T type; };
template<class T> struct remove_const<const T> { typedef T type; };
template<class T> using remove_const_t = typename remove_const<T>::type;
template<class T> struct remove_volatile { typedef T type; };
template<class T> struct remove_volatile<volatile T> { typedef T type; };
template<class T> using remove_volatile_t = typename remove_volatile<T>::type;
template<class T> struct remove_cv { typedef typename remove_volatile<typename remove_const<T>::type>::type type; };
template<class T> using remove_cv_t = typename remove_cv<T>::type;
template<class T> struct remove_cvref { typedef remove_cv_t<remove_reference_t<T>> type; };
template<class T> using remove_cvref_t = typename remove_cvref<T>::type;
template<class T> struct decay { typedef remove_cvref_t<T> type; };
template<class T> using decay_t = typename decay<T>::type;

// std::declval under a runtime name: Apple's metal_stdlib declares neither declval nor move
// (a library may).
template<class T> MG_DECL typename remove_reference<T>::type&& mg_declval() noexcept;

// Classification of the unqualified type; specialised for half/bfloat in mg_scalar.h.
template<class T> struct mg_is_float_raw : false_type {};
template<> struct mg_is_float_raw<float> : true_type {};
template<> struct mg_is_float_raw<double> : true_type {};
template<> struct mg_is_float_raw<long double> : true_type {};
template<class T> struct mg_is_int_raw : false_type {};
template<> struct mg_is_int_raw<bool> : true_type {};
template<> struct mg_is_int_raw<char> : true_type {};
template<> struct mg_is_int_raw<signed char> : true_type {};
template<> struct mg_is_int_raw<unsigned char> : true_type {};
template<> struct mg_is_int_raw<short> : true_type {};
template<> struct mg_is_int_raw<unsigned short> : true_type {};
template<> struct mg_is_int_raw<int> : true_type {};
template<> struct mg_is_int_raw<unsigned int> : true_type {};
template<> struct mg_is_int_raw<long> : true_type {};
template<> struct mg_is_int_raw<unsigned long> : true_type {};
template<> struct mg_is_int_raw<long long> : true_type {};
template<> struct mg_is_int_raw<unsigned long long> : true_type {};

template<class T> struct is_floating_point : mg_is_float_raw<remove_cv_t<T>> {};
template<class T> constexpr bool is_floating_point_v = is_floating_point<T>::value;
template<class T> struct is_integral : mg_is_int_raw<remove_cv_t<T>> {};
template<class T> constexpr bool is_integral_v = is_integral<T>::value;
template<class T> struct is_arithmetic : bool_constant<is_integral<T>::value || is_floating_point<T>::value> {};
template<class T> constexpr bool is_arithmetic_v = is_arithmetic<T>::value;
template<class T> struct is_pointer : false_type {};
template<class T> struct is_pointer<T*> : true_type {};
template<class T> struct is_pointer<T* const> : true_type {};
template<class T> constexpr bool is_pointer_v = is_pointer<T>::value;
template<class T> struct is_scalar : bool_constant<is_arithmetic<T>::value || is_pointer<T>::value> {};
template<class T> constexpr bool is_scalar_v = is_scalar<T>::value;
template<class T> struct is_signed
    : bool_constant<is_floating_point<T>::value ||
                    (is_integral<T>::value && (remove_cv_t<T>)(-1) < (remove_cv_t<T>)(0))> {};
template<class T> constexpr bool is_signed_v = is_signed<T>::value;
template<class T> struct is_unsigned : bool_constant<is_integral<T>::value && !is_signed<T>::value> {};
template<class T> constexpr bool is_unsigned_v = is_unsigned<T>::value;
template<class T> struct is_const : false_type {};
template<class T> struct is_const<const T> : true_type {};
template<class T> constexpr bool is_const_v = is_const<T>::value;
template<class T> struct is_reference : false_type {};
template<class T> struct is_reference<T&> : true_type {};
template<class T> struct is_reference<T&&> : true_type {};
template<class T> constexpr bool is_reference_v = is_reference<T>::value;

template<class From, class To> struct is_convertible {
 private:
  template<class T> static void mg_accept(T) noexcept;
  template<class F, class T, class = decltype(mg_accept<T>(mg_declval<F>()))> static true_type mg_test(int);
  template<class, class> static false_type mg_test(...);
 public:
  static constexpr bool value = decltype(mg_test<From, To>(0))::value
#if MG_HALF_IS_FLOAT16
      // Metal's half takes every arithmetic type implicitly; GCC 13+ refuses a wider float
      // (see mg_config.h), which would hide MLX's conversion operators to half.
      || (is_same<remove_cv_t<To>, _Float16>::value && is_arithmetic<remove_cvref_t<From>>::value)
#endif
      ;
};
template<class From, class To> constexpr bool is_convertible_v = is_convertible<From, To>::value;
template<class B, class D> struct is_base_of : bool_constant<__is_base_of(B, D)> {};
template<class B, class D> constexpr bool is_base_of_v = is_base_of<B, D>::value;
template<class T> struct is_class : bool_constant<__is_class(T)> {};
template<class T> constexpr bool is_class_v = is_class<T>::value;
template<class T> struct is_enum : bool_constant<__is_enum(T)> {};
template<class T> constexpr bool is_enum_v = is_enum<T>::value;
template<class T> struct is_trivially_copyable : bool_constant<__is_trivially_copyable(T)> {};
template<class T> constexpr bool is_trivially_copyable_v = is_trivially_copyable<T>::value;

template<class T> struct is_volatile : false_type {};
template<class T> struct is_volatile<volatile T> : true_type {};
template<class T> constexpr bool is_volatile_v = is_volatile<T>::value;
template<class T> struct is_void : is_same<remove_cv_t<T>, void> {};
template<class T> constexpr bool is_void_v = is_void<T>::value;
template<class T> struct is_lvalue_reference : false_type {};
template<class T> struct is_lvalue_reference<T&> : true_type {};
template<class T> constexpr bool is_lvalue_reference_v = is_lvalue_reference<T>::value;
template<class T> struct is_rvalue_reference : false_type {};
template<class T> struct is_rvalue_reference<T&&> : true_type {};
template<class T> constexpr bool is_rvalue_reference_v = is_rvalue_reference<T>::value;
template<class T> struct is_array : false_type {};
template<class T> struct is_array<T[]> : true_type {};
template<class T, size_t N> struct is_array<T[N]> : true_type {};
template<class T> constexpr bool is_array_v = is_array<T>::value;
// Only function types and references cannot be const-qualified.
template<class T> struct is_function : bool_constant<!is_const<const T>::value && !is_reference<T>::value> {};
template<class T> constexpr bool is_function_v = is_function<T>::value;
template<class T> struct is_fundamental
    : bool_constant<is_arithmetic<T>::value || is_void<T>::value ||
                    is_same<remove_cv_t<T>, decltype(nullptr)>::value> {};
template<class T> constexpr bool is_fundamental_v = is_fundamental<T>::value;
template<class T> struct add_const { typedef const T type; };
template<class T> using add_const_t = typename add_const<T>::type;
template<class T> struct add_volatile { typedef volatile T type; };
template<class T> using add_volatile_t = typename add_volatile<T>::type;
template<class T> struct add_cv { typedef const volatile T type; };
template<class T> using add_cv_t = typename add_cv<T>::type;
template<class T> struct add_pointer { typedef remove_reference_t<T>* type; };
template<class T> using add_pointer_t = typename add_pointer<T>::type;
// void has no reference: these leave it as it is.
template<class T> struct add_lvalue_reference { typedef T& type; };
template<> struct add_lvalue_reference<void> { typedef void type; };
template<class T> using add_lvalue_reference_t = typename add_lvalue_reference<T>::type;
template<class T> struct add_rvalue_reference { typedef T&& type; };
template<> struct add_rvalue_reference<void> { typedef void type; };
template<class T> using add_rvalue_reference_t = typename add_rvalue_reference<T>::type;
template<class T> struct underlying_type { typedef __underlying_type(T) type; };
template<class T> using underlying_type_t = typename underlying_type<T>::type;
// Our vector types (specialised in mg_vector.h).
template<class T> struct is_vector : false_type {};
template<class T> constexpr bool is_vector_v = is_vector<remove_cv_t<T>>::value;

template<class T> struct make_unsigned { typedef T type; };
template<> struct make_unsigned<char> { typedef unsigned char type; };
template<> struct make_unsigned<signed char> { typedef unsigned char type; };
template<> struct make_unsigned<short> { typedef unsigned short type; };
template<> struct make_unsigned<int> { typedef unsigned int type; };
template<> struct make_unsigned<long> { typedef unsigned long type; };
template<> struct make_unsigned<long long> { typedef unsigned long long type; };
template<class T> using make_unsigned_t = typename make_unsigned<T>::type;
template<class T> struct make_signed { typedef T type; };
template<> struct make_signed<char> { typedef signed char type; };
template<> struct make_signed<unsigned char> { typedef signed char type; };
template<> struct make_signed<unsigned short> { typedef short type; };
template<> struct make_signed<unsigned int> { typedef int type; };
template<> struct make_signed<unsigned long> { typedef long type; };
template<> struct make_signed<unsigned long long> { typedef long long type; };
template<class T> using make_signed_t = typename make_signed<T>::type;

// numeric_limits (half / bfloat specialisations live in mg_scalar.h).
template<class T> struct numeric_limits {
  static constexpr bool is_specialized = false;
};
#define MG_INT_LIMITS(T, MINV, MAXV, SIGNED, DIGITS)                       \
  template<> struct numeric_limits<T> {                                    \
    static constexpr bool is_specialized = true;                           \
    static constexpr bool is_signed = SIGNED;                              \
    static constexpr bool is_integer = true;                               \
    static constexpr int digits = DIGITS;                                  \
    static constexpr bool has_infinity = false;                            \
    MG_FN static constexpr T min() { return MINV; }                        \
    MG_FN static constexpr T max() { return MAXV; }                        \
    MG_FN static constexpr T lowest() { return MINV; }                     \
    MG_FN static constexpr T epsilon() { return 0; }                       \
    MG_FN static constexpr T infinity() { return 0; }                      \
    MG_FN static constexpr T quiet_NaN() { return 0; }                     \
  };
MG_INT_LIMITS(bool, false, true, false, 1)
MG_INT_LIMITS(char, (char)(-128), (char)127, true, 7)
MG_INT_LIMITS(signed char, (signed char)(-128), (signed char)127, true, 7)
MG_INT_LIMITS(unsigned char, (unsigned char)0, (unsigned char)255, false, 8)
MG_INT_LIMITS(short, (short)(-32768), (short)32767, true, 15)
MG_INT_LIMITS(unsigned short, (unsigned short)0, (unsigned short)65535, false, 16)
MG_INT_LIMITS(int, -2147483647 - 1, 2147483647, true, 31)
MG_INT_LIMITS(unsigned int, 0u, 4294967295u, false, 32)
MG_INT_LIMITS(long, -9223372036854775807L - 1, 9223372036854775807L, true, 63)
MG_INT_LIMITS(unsigned long, 0ul, 18446744073709551615ul, false, 64)
MG_INT_LIMITS(long long, -9223372036854775807LL - 1, 9223372036854775807LL, true, 63)
MG_INT_LIMITS(unsigned long long, 0ull, 18446744073709551615ull, false, 64)
#undef MG_INT_LIMITS

template<> struct numeric_limits<float> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr int digits = 24;
  static constexpr bool has_infinity = true;
  MG_FN static constexpr float min() { return 1.17549435082228750797e-38F; }
  MG_FN static constexpr float max() { return 3.40282346638528859812e+38F; }
  MG_FN static constexpr float lowest() { return -3.40282346638528859812e+38F; }
  MG_FN static constexpr float epsilon() { return 1.1920928955078125e-07F; }
#if MG_CUDA && MG_HAS_BIT_CAST
  // NVRTC has no __builtin_huge_valf; constexpr still, as MLX's `static constexpr constant
  // float max = metal::numeric_limits<float>::infinity();` needs.
  MG_FN static constexpr float infinity() { return __builtin_bit_cast(float, 0x7f800000u); }
  MG_FN static constexpr float quiet_NaN() { return __builtin_bit_cast(float, 0x7fc00000u); }
#elif MG_CUDA
  MG_FN static float infinity() { return __int_as_float(0x7f800000); }
  MG_FN static float quiet_NaN() { return __int_as_float(0x7fc00000); }
#else
  MG_FN static constexpr float infinity() { return __builtin_huge_valf(); }
  MG_FN static constexpr float quiet_NaN() { return __builtin_nanf(""); }
#endif
};
template<> struct numeric_limits<double> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr int digits = 53;
  static constexpr bool has_infinity = true;
  MG_FN static constexpr double min() { return 2.22507385850720138309e-308; }
  MG_FN static constexpr double max() { return 1.79769313486231570815e+308; }
  MG_FN static constexpr double lowest() { return -1.79769313486231570815e+308; }
  MG_FN static constexpr double epsilon() { return 2.22044604925031308085e-16; }
#if MG_CUDA && MG_HAS_BIT_CAST
  MG_FN static constexpr double infinity() { return __builtin_bit_cast(double, 0x7ff0000000000000ull); }
  MG_FN static constexpr double quiet_NaN() { return __builtin_bit_cast(double, 0x7ff8000000000000ull); }
#elif MG_CUDA
  MG_FN static double infinity() { return __longlong_as_double(0x7ff0000000000000ll); }
  MG_FN static double quiet_NaN() { return __longlong_as_double(0x7ff8000000000000ll); }
#else
  MG_FN static constexpr double infinity() { return __builtin_huge_val(); }
  MG_FN static constexpr double quiet_NaN() { return __builtin_nan(""); }
#endif
};
template<class T> struct numeric_limits<const T> : numeric_limits<T> {};

} // namespace metal
