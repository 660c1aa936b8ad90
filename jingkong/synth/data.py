"""Reference tables the generator draws from: the census pyramid, household sizes, names, migrant origins, employers.

Figures marked "China 2020" come from the Seventh National Population Census (第七次全国人口普查) communiqués;
everything else is an estimate chosen for plausibility and documented as such.
"""

from __future__ import annotations

import numpy as np

# China 2020 census: population (millions) by 5-year age band, male / female; the last band is 85+.
AGE_BANDS = np.arange(0, 90, 5)
PYRAMID_MALE = np.array(
    [41.0, 48.5, 45.9, 39.0, 39.7, 47.4, 63.4, 50.9, 47.6, 58.2, 61.7, 50.6, 36.3, 36.0, 23.0, 14.0, 9.0, 6.6]
)
PYRAMID_FEMALE = np.array(
    [36.9, 41.7, 39.4, 33.6, 35.3, 44.4, 60.7, 48.1, 45.4, 56.0, 60.4, 50.8, 37.1, 38.0, 24.7, 16.0, 11.4, 9.2]
)
MAX_AGE = 99

# China 2020 census: family households by size 1..7+ (share); mean ≈ 2.62.
HOUSEHOLD_SIZE_SHARE = np.array([0.254, 0.297, 0.209, 0.132, 0.062, 0.029, 0.017])

# Street population shares (estimates from each street's urbanisation; not census figures). Sum normalised.
STREET_WEIGHTS = {
    "330206001": 0.035,  # 大榭
    "330206002": 0.280,  # 新碶 (district seat)
    "330206003": 0.120,  # 小港
    "330206004": 0.210,  # 大碶
    "330206005": 0.070,  # 霞浦
    "330206006": 0.090,  # 柴桥
    "330206007": 0.040,  # 戚家山
    "330206008": 0.035,  # 春晓
    "330206009": 0.030,  # 梅山
    "330206010": 0.025,  # 郭巨
    "330206011": 0.045,  # 白峰
    "330206401": 0.010,  # 保税区
}
URBAN_STREETS = {"330206001", "330206002", "330206003", "330206004", "330206005", "330206007", "330206401"}
INDUSTRIAL_STREETS = {"330206002", "330206003", "330206004", "330206005", "330206006", "330206401"}

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石"
    "廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# Roughly Zipf-like weights: the first surnames are far more common.
SURNAME_WEIGHTS = 1.0 / (np.arange(len(SURNAMES)) + 8.0)
GIVEN_MALE = list("伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国志文海峰晨博亮成松家豪子轩天佳")
GIVEN_FEMALE = list("芳娜敏静丽艳娟霞燕玲婷雪琳晶颖慧倩洁佳欣怡梦雨萍红月莉丹蕾琴璐瑶嘉妍子涵思诗晓露悦婉桂兰秀英")

# Migrant origins (household registration outside Beilun): county-level area code, address, weight.
MIGRANT_ORIGINS = [
    ("341221", "安徽省阜阳市临泉县", 6), ("341222", "安徽省阜阳市太和县", 5), ("341226", "安徽省阜阳市颍上县", 4),
    ("341321", "安徽省宿州市砀山县", 2), ("341623", "安徽省亳州市利辛县", 3), ("411627", "河南省周口市太康县", 4),
    ("411625", "河南省周口市郸城县", 3), ("411723", "河南省驻马店市平舆县", 2), ("411523", "河南省信阳市新县", 2),
    ("520521", "贵州省毕节市大方县", 5), ("520524", "贵州省毕节市织金县", 4), ("511722", "四川省达州市宣汉县", 4),
    ("511723", "四川省达州市开江县", 2), ("430523", "湖南省邵阳市邵阳县", 3), ("430525", "湖南省邵阳市洞口县", 2),
    ("361123", "江西省上饶市玉山县", 3), ("361127", "江西省上饶市余干县", 3), ("530621", "云南省昭通市鲁甸县", 3),
    ("530623", "云南省昭通市盐津县", 2), ("421126", "湖北省黄冈市蕲春县", 2), ("421127", "湖北省黄冈市黄梅县", 2),
    ("320321", "江苏省徐州市丰县", 2), ("620521", "甘肃省天水市清水县", 2), ("500230", "重庆市丰都县", 3),
    ("500235", "重庆市云阳县", 3), ("330327", "浙江省温州市苍南县", 2), ("331082", "浙江省台州市临海市", 2),
    ("330381", "浙江省温州市瑞安市", 1), ("331122", "浙江省丽水市缙云县", 1),
]
# Locally registered residents: most IDs carry Beilun's code, some another Ningbo district's (born there).
LOCAL_ORIGINS = [("330206", 90), ("330203", 3), ("330211", 3), ("330212", 4)]

PHONE_PREFIXES = np.array(
    [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158, 159, 173, 177, 180, 181,
     182, 183, 185, 186, 187, 188, 189, 191, 198, 199],
    dtype=np.int64,
)

# Key-industry workplaces: (industry, venue type, street code, venue name). Ningbo-Zhoushan port terminals in Beilun.
KEY_WORKPLACES = [
    ("port", "port_terminal", "330206002", "宁波舟山港北仑第二集装箱码头"),
    ("port", "port_terminal", "330206005", "宁波舟山港北仑第三集装箱码头"),
    ("port", "port_terminal", "330206007", "宁波舟山港北仑港区矿石码头"),
    ("port", "port_terminal", "330206001", "大榭招商国际集装箱码头"),
    ("port", "port_terminal", "330206001", "大榭实华原油码头"),
    ("port", "port_terminal", "330206009", "梅山岛国际集装箱码头"),
    ("port", "port_terminal", "330206011", "穿山港区远东集装箱码头"),
    ("cold_chain", "cold_chain", "330206401", "保税区冷链物流中心一号库"),
    ("cold_chain", "cold_chain", "330206401", "保税区进口冷冻食品集中监管仓"),
    ("cold_chain", "cold_chain", "330206001", "大榭冷链仓储中心"),
    ("cold_chain", "cold_chain", "330206009", "梅山冷链物流园"),
    ("cold_chain", "cold_chain", "330206002", "北仑港冷库"),
    ("hospital", "clinic", "330206002", "北仑区人民医院"),
    ("hospital", "clinic", "330206004", "北仑区中医院"),
    ("hospital", "clinic", "330206003", "北仑区第二人民医院"),
    ("hospital", "clinic", "330206006", "北仑区第三人民医院"),
    ("transport", "station", "330206002", "北仑汽车站"),
    ("transport", "station", "330206004", "北仑港物流园货运站"),
    ("transport", "station", "330206005", "霞浦集卡停车场"),
    ("transport", "station", "330206001", "大榭集卡服务中心"),
    ("ship_crew", "port_terminal", "330206007", "北仑港区船员服务站"),
    ("ship_crew", "port_terminal", "330206009", "梅山港区船员服务站"),
]
# Share of people aged 18–59 working in each key industry (estimates for a port district).
INDUSTRY_SHARE = {"port": 0.030, "cold_chain": 0.008, "hospital": 0.010, "transport": 0.030, "ship_crew": 0.006}
INDUSTRY_CODES = ["", "port", "cold_chain", "airport", "hospital", "transport", "ship_crew"]

GARMENT_FACTORY_NAME = "宁波甬织服饰有限公司第三分厂"
FACTORY_WORDS = list("甬港海宏华泰远恒鑫瑞丰盛达兴安凯亿隆祥")
FACTORY_TRADES = ["机械", "模具", "电子", "塑业", "五金", "汽配", "化工", "纺织", "电器", "精密", "钢铁", "包装", "家电", "新材料"]
OFFICE_TRADES = ["物流", "贸易", "进出口", "船务", "国际货代", "信息科技", "建设工程"]
SUPERMARKET_BRANDS = ["联华超市", "三江购物", "华润万家", "物美超市", "家家福便利店", "好又多超市"]
RESTAURANTS = ["沙县小吃", "兰州拉面", "宁波汤圆店", "海鲜大排档", "老张面馆", "黄焖鸡米饭", "麻辣烫", "快餐店", "小笼包子铺",
               "重庆小面", "烧烤店", "奶茶店", "咖啡馆", "火锅店", "东北饺子馆"]
PHARMACIES = ["老百姓大药房", "海王星辰药店", "天天好大药房", "益丰大药房", "同仁堂药店"]
