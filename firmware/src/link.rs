//! The host link: what arrives over a serial port on a board (samples, a model) and what goes
//! back (predictions, a trained model). Under QEMU it is semihosting file I/O. One sample is
//! in RAM at a time.

use semihosting::fs::File;
use semihosting::io::{Read, Write};

/// A link failure, with the file or stream it concerns.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum LinkError {
    Open(&'static str),
    Read(&'static str),
    Write(&'static str),
    BadHeader(&'static str),
}

/// Which split of the data set.
#[derive(Clone, Copy, Debug, defmt::Format, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Samples in and results out.
pub trait HostLink {
    /// Starts streaming `split`; returns how many samples it has.
    fn open(&mut self, split: Split) -> Result<usize, LinkError>;
    /// The next sample: pixels scaled to [0, 1] into `image`, and its label.
    fn next_sample(&mut self, image: &mut [f32]) -> Result<u8, LinkError>;
    /// Starts receiving `what` from the host.
    fn begin_download(&mut self, what: Download) -> Result<(), LinkError>;
    /// Fills `buf` with the next bytes of the current download.
    fn download(&mut self, buf: &mut [u8]) -> Result<(), LinkError>;
    /// Starts sending `what` to the host.
    fn begin_upload(&mut self, what: Upload) -> Result<(), LinkError>;
    /// Sends the next bytes of the current upload.
    fn upload(&mut self, bytes: &[u8]) -> Result<(), LinkError>;
}

/// What goes back to the host.
#[derive(Clone, Copy, Debug, defmt::Format, PartialEq, Eq)]
pub enum Upload {
    /// One byte per test sample: the predicted class.
    Predictions,
    /// A model file with the weights trained on the device.
    Model,
    /// The golden vectors of every op, computed on the device.
    Golden,
}

/// What comes from the host besides samples.
#[derive(Clone, Copy, Debug, defmt::Format, PartialEq, Eq)]
pub enum Download {
    /// A model file to run instead of the one in flash.
    Model,
}

/// The MNIST IDX files of `data/mnist/`, read through semihosting.
#[derive(Default)]
pub struct SemihostingLink {
    images: Option<File>,
    labels: Option<File>,
    inputs: Option<File>,
    outputs: Option<File>,
}

// The host (`cargo xtask qemu train`) streams the training digits in a shuffled order.
const TRAIN_IMAGES: &core::ffi::CStr = c"target/qemu/train-images-idx3-ubyte";
const TRAIN_LABELS: &core::ffi::CStr = c"target/qemu/train-labels-idx1-ubyte";
const TEST_IMAGES: &core::ffi::CStr = c"data/mnist/t10k-images-idx3-ubyte";
const TEST_LABELS: &core::ffi::CStr = c"data/mnist/t10k-labels-idx1-ubyte";

fn read_header(file: &mut File, words: usize, what: &'static str) -> Result<[u32; 4], LinkError> {
    let mut buf = [0u8; 16];
    file.read_exact(&mut buf[..4 * words]).map_err(|_| LinkError::Read(what))?;
    let mut out = [0u32; 4];
    for (o, b) in out.iter_mut().zip(buf.chunks_exact(4)) {
        *o = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(out)
}

impl HostLink for SemihostingLink {
    fn open(&mut self, split: Split) -> Result<usize, LinkError> {
        let (ipath, lpath, what) = match split {
            Split::Train => (TRAIN_IMAGES, TRAIN_LABELS, "train"),
            Split::Test => (TEST_IMAGES, TEST_LABELS, "t10k"),
        };
        let mut images = File::open(ipath).map_err(|_| LinkError::Open(what))?;
        let mut labels = File::open(lpath).map_err(|_| LinkError::Open(what))?;
        let ih = read_header(&mut images, 4, "images header")?;
        let lh = read_header(&mut labels, 2, "labels header")?;
        if ih[0] != 0x0803 || lh[0] != 0x0801 || ih[1] != lh[1] || ih[2] != 28 || ih[3] != 28 {
            return Err(LinkError::BadHeader(what));
        }
        self.images = Some(images);
        self.labels = Some(labels);
        Ok(ih[1] as usize)
    }

    fn next_sample(&mut self, image: &mut [f32]) -> Result<u8, LinkError> {
        let (Some(images), Some(labels)) = (self.images.as_mut(), self.labels.as_mut()) else {
            return Err(LinkError::Read("no split open"));
        };
        let mut row = [0u8; 28];
        for chunk in image.chunks_exact_mut(28) {
            images.read_exact(&mut row).map_err(|_| LinkError::Read("image"))?;
            for (p, &b) in chunk.iter_mut().zip(&row) {
                *p = b as f32 / 255.0;
            }
        }
        let mut label = [0u8];
        labels.read_exact(&mut label).map_err(|_| LinkError::Read("label"))?;
        Ok(label[0])
    }

    fn begin_download(&mut self, what: Download) -> Result<(), LinkError> {
        let path = match what {
            Download::Model => c"target/qemu/to-device.mote",
        };
        self.inputs = Some(File::open(path).map_err(|_| LinkError::Open("download"))?);
        Ok(())
    }

    fn download(&mut self, buf: &mut [u8]) -> Result<(), LinkError> {
        let input = self.inputs.as_mut().ok_or(LinkError::Read("no download begun"))?;
        input.read_exact(buf).map_err(|_| LinkError::Read("download"))
    }

    fn begin_upload(&mut self, what: Upload) -> Result<(), LinkError> {
        let path = match what {
            Upload::Predictions => c"target/qemu/predictions.bin",
            Upload::Model => c"target/qemu/device-trained.mote",
            Upload::Golden => c"target/qemu/golden.bin",
        };
        self.outputs = Some(File::create(path).map_err(|_| LinkError::Open("upload"))?);
        Ok(())
    }

    fn upload(&mut self, bytes: &[u8]) -> Result<(), LinkError> {
        let out = self.outputs.as_mut().ok_or(LinkError::Write("no upload begun"))?;
        out.write_all(bytes).map_err(|_| LinkError::Write("upload"))
    }
}
