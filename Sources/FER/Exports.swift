// What an app needs from the layers below, and nothing else: the answers (FaceResult, FaceBox),
// the pixels they come from (Image), the settings of a Configuration, and the error of a precision
// that cannot run.
@_exported import struct FERIO.Image
@_exported import struct FERVision.FaceResult
@_exported import struct FERVision.FaceBox
@_exported import struct FERVision.DetectorSettings
@_exported import struct FERVision.FaceReading
@_exported import enum FERVision.DetectorKind
@_exported import enum FERData.TestTimeAugmentation
@_exported import enum FEREngine.Precision
@_exported import enum FERModels.PrecisionChoice
@_exported import struct FERModels.PrecisionUnavailable
@_exported import struct FERModels.ModelCard
