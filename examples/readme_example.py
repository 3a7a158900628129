from metalgpu import Interface
import ctypes, numpy as np
instance = Interface()
instance.load_shader("./shader.metal")
instance.set_function("adder")
buffer_size = 100000
buffer1 = instance.create_buffer(buffer_size, ctypes.c_int)
buffer2 = instance.create_buffer(buffer_size, ctypes.c_int)
buffer3 = instance.create_buffer(buffer_size, ctypes.c_int)
for i in range(buffer_size):
    buffer1.contents[i] = i
    buffer2.contents[i] = int(np.sqrt(i))
instance.run_function(buffer_size, [buffer1, buffer2, buffer3])
for i in range(buffer_size):
    assert buffer3.contents[i] == i + int(np.sqrt(i))
buffer1.release(); buffer2.release(); buffer3.release()
