// Reading a case's studies over our DICOMweb (QIDO-RS searches, WADO-RS metadata).

import { gettext, interpolate } from "../i18n.js";

export const TAG = {
  studyUid: "0020000D",
  seriesUid: "0020000E",
  sopUid: "00080018",
  modality: "00080060",
  seriesDescription: "0008103E",
  seriesNumber: "00200011",
  instanceNumber: "00200013",
  instanceCount: "00201209",
  frames: "00280008",
  transferSyntax: "00020010",
  availableTransferSyntax: "00083002",
  studyDescription: "00081030",
  studyDate: "00080020",
};

export function value(attributes, tag) {
  const element = attributes?.[tag];
  return element && element.Value ? element.Value[0] : undefined;
}

async function getJson(url) {
  const response = await fetch(url, {
    headers: { Accept: "application/dicom+json" },
    credentials: "same-origin",
  });
  if (response.status === 401) throw new Error(gettext("Your session has ended. Sign in again to see the images."));
  if (!response.ok) {
    const text = gettext("The images could not be loaded (the server answered %(status)s).");
    throw new Error(interpolate(text, { status: response.status }));
  }
  return response.json();
}

// Studies of the case, each with its series (sorted by series number).
export async function loadStudies(base) {
  const studies = await getJson(`${base}/studies`);
  return Promise.all(
    studies.map(async (study) => {
      const studyUid = value(study, TAG.studyUid);
      const date = value(study, TAG.studyDate) || "";
      const series = await getJson(`${base}/studies/${studyUid}/series`);
      series.sort((a, b) => (value(a, TAG.seriesNumber) ?? 0) - (value(b, TAG.seriesNumber) ?? 0));
      return {
        uid: studyUid,
        description: value(study, TAG.studyDescription) || gettext("Study"),
        date,
        series: series.map((s) => ({
          studyUid,
          uid: value(s, TAG.seriesUid),
          modality: value(s, TAG.modality) || "",
          description: value(s, TAG.seriesDescription) || "",
          number: value(s, TAG.seriesNumber),
          count: value(s, TAG.instanceCount) || 0,
          date,
        })),
      };
    }),
  );
}

// Metadata of every instance of a series, in instance-number order.
export async function loadSeriesMetadata(base, series) {
  const instances = await getJson(`${base}/studies/${series.studyUid}/series/${series.uid}/metadata`);
  instances.sort((a, b) => (value(a, TAG.instanceNumber) ?? 0) - (value(b, TAG.instanceNumber) ?? 0));
  return instances;
}

// The series' instances from the database (fast: no file is opened), in display order.
export async function searchInstances(base, series) {
  const instances = await getJson(`${base}/studies/${series.studyUid}/series/${series.uid}/instances`);
  instances.sort((a, b) => (value(a, TAG.instanceNumber) ?? 0) - (value(b, TAG.instanceNumber) ?? 0));
  return instances;
}

export async function loadInstanceMetadata(base, series, sopUid) {
  const [metadata] = await getJson(
    `${base}/studies/${series.studyUid}/series/${series.uid}/instances/${sopUid}/metadata`,
  );
  return metadata;
}
