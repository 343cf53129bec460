//! The demo catalogue that makes a first run look like a shop. Loaded only into an empty
//! catalogue (and never when `WXMALL_DEMO_CATALOGUE=0`).

use crate::db::Db;

struct DemoProduct {
    category: &'static str,
    name: &'static str,
    description: &'static str,
    image: &'static str,
    /// (SKU name, price in fen, stock)
    skus: &'static [(&'static str, i64, i64)],
}

const CATEGORIES: &[&str] = &["水果生鲜", "零食饮品", "家居日用", "服饰鞋包", "数码配件"];

const PRODUCTS: &[DemoProduct] = &[
    DemoProduct {
        category: "水果生鲜",
        name: "赣南脐橙",
        description: "当季现摘，果肉饱满多汁，酸甜适中。产地直发，坏果包赔。",
        image: "orange",
        skus: &[("2.5kg 中果", 3990, 120), ("5kg 大果", 6990, 80)],
    },
    DemoProduct {
        category: "水果生鲜",
        name: "阳光玫瑰青提",
        description: "脆甜无籽，自带玫瑰香气。冷链配送，新鲜到家。",
        image: "grape",
        skus: &[("1kg 礼盒", 5990, 60), ("2kg 家庭装", 10990, 30)],
    },
    DemoProduct {
        category: "水果生鲜",
        name: "烟台红富士苹果",
        description: "果面光洁，口感脆甜，适合全家分享。",
        image: "apple",
        skus: &[("12 个装", 4590, 100)],
    },
    DemoProduct {
        category: "水果生鲜",
        name: "海南金钻凤梨",
        description: "免削皮，芯可食，香甜不扎嘴。",
        image: "pineapple",
        skus: &[("2 个装", 3290, 0)],
    },
    DemoProduct {
        category: "零食饮品",
        name: "每日坚果",
        description: "七种坚果果干科学配比，每天一包，独立小袋装。",
        image: "nuts",
        skus: &[("30 包", 8900, 200), ("7 包尝鲜装", 2500, 300)],
    },
    DemoProduct {
        category: "零食饮品",
        name: "云南小粒咖啡豆",
        description: "中度烘焙，坚果与焦糖风味，保山产区。",
        image: "coffee",
        skus: &[("500g 咖啡豆", 6800, 50), ("500g 研磨粉", 6800, 40)],
    },
    DemoProduct {
        category: "零食饮品",
        name: "西湖龙井",
        description: "明前头采，豆香清雅，罐装防潮。",
        image: "tea",
        skus: &[("100g 罐装", 12800, 25), ("250g 礼盒", 29800, 10)],
    },
    DemoProduct {
        category: "零食饮品",
        name: "手工牛轧糖",
        description: "台式配方，奶香浓郁，花生酥脆不粘牙。",
        image: "candy",
        skus: &[("原味 300g", 2990, 150), ("抹茶味 300g", 3290, 90)],
    },
    DemoProduct {
        category: "家居日用",
        name: "日式陶瓷马克杯",
        description: "手工釉色，每只都略有不同，容量 350ml。",
        image: "mug",
        skus: &[("青釉", 4900, 40), ("米白", 4900, 35), ("墨黑", 5200, 5)],
    },
    DemoProduct {
        category: "家居日用",
        name: "纯棉四件套",
        description: "100% 长绒棉，亲肤透气，适用 1.5m / 1.8m 床。",
        image: "bedding",
        skus: &[
            ("1.5m 浅灰", 29900, 20),
            ("1.8m 浅灰", 32900, 20),
            ("1.8m 雾蓝", 32900, 12),
        ],
    },
    DemoProduct {
        category: "家居日用",
        name: "香薰蜡烛",
        description: "大豆蜡，无烟燃烧约 40 小时，木质调。",
        image: "candle",
        skus: &[("雪松", 6900, 60), ("白茶", 6900, 60)],
    },
    DemoProduct {
        category: "家居日用",
        name: "收纳盒三件套",
        description: "可叠放，透明可视，衣柜抽屉都适用。",
        image: "box",
        skus: &[("三件套", 3990, 200)],
    },
    DemoProduct {
        category: "服饰鞋包",
        name: "帆布托特包",
        description: "加厚帆布，内有拉链袋，通勤买菜都方便。",
        image: "bag",
        skus: &[("米白", 5900, 80), ("黑色", 5900, 70)],
    },
    DemoProduct {
        category: "服饰鞋包",
        name: "纯棉短袖 T 恤",
        description: "220g 重磅棉，不易变形，宽松版型。",
        image: "tshirt",
        skus: &[
            ("白色 M", 7900, 50),
            ("白色 L", 7900, 50),
            ("黑色 M", 7900, 40),
            ("黑色 L", 7900, 0),
        ],
    },
    DemoProduct {
        category: "服饰鞋包",
        name: "羊毛围巾",
        description: "澳洲美利奴羊毛，柔软不扎，冬日必备。",
        image: "scarf",
        skus: &[("燕麦色", 15900, 30), ("酒红色", 15900, 18)],
    },
    DemoProduct {
        category: "服饰鞋包",
        name: "轻便运动袜",
        description: "网眼透气，足弓支撑，五双装。",
        image: "socks",
        skus: &[("五双装 均码", 3900, 0)],
    },
    DemoProduct {
        category: "数码配件",
        name: "20W 快充充电器",
        description: "PD 协议快充，小巧便携，附 1m 数据线。",
        image: "charger",
        skus: &[("白色", 5900, 100)],
    },
    DemoProduct {
        category: "数码配件",
        name: "无线蓝牙耳机",
        description: "主动降噪，续航 30 小时，入耳舒适。",
        image: "earbuds",
        skus: &[("白色", 29900, 25), ("黑色", 29900, 20)],
    },
    DemoProduct {
        category: "数码配件",
        name: "磁吸手机支架",
        description: "车载桌面两用，强磁吸附，单手取放。",
        image: "stand",
        skus: &[("车载款", 4900, 60), ("桌面款", 3900, 70)],
    },
    DemoProduct {
        category: "数码配件",
        name: "10000mAh 充电宝",
        description: "轻薄机身，双向快充，可带上飞机。",
        image: "powerbank",
        skus: &[("白色", 9900, 45), ("黑色", 9900, 3)],
    },
];

/// Inserts the demo catalogue if the catalogue is empty. Returns how many products it added.
pub async fn seed_if_empty(pool: &Db) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Instances starting together on one PostgreSQL database load it once.
    tx.lock(crate::db::locks::DEMO_CATALOGUE).await?;
    let existing: i64 = crate::sql!(&mut tx, e => sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(e).await)?;
    if existing > 0 {
        return Ok(0);
    }
    for (sort, name) in CATEGORIES.iter().enumerate() {
        crate::sql!(&mut tx, e => sqlx::query("INSERT INTO categories (name, sort) VALUES ($1, $2)")
            .bind(name)
            .bind(sort as i64)
            .execute(e).await.map(crate::db::Done::from))?;
    }
    for (sort, p) in PRODUCTS.iter().enumerate() {
        let image = format!("/images/products/{}.svg", p.image);
        let product_id: i64 = crate::sql!(&mut tx, e => sqlx::query_scalar(
            "INSERT INTO products (category_id, name, description, image, images, sort) \
             VALUES ((SELECT id FROM categories WHERE name = $1), $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(p.category)
        .bind(p.name)
        .bind(p.description)
        .bind(&image)
        .bind(format!("/images/products/{}-2.svg", p.image))
        .bind(sort as i64)
        .fetch_one(e).await)?;
        for (sku_sort, (name, price_fen, stock)) in p.skus.iter().enumerate() {
            crate::sql!(&mut tx, e => sqlx::query(
                "INSERT INTO skus (product_id, name, price_fen, stock, sort) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(product_id)
            .bind(name)
            .bind(price_fen)
            .bind(stock)
            .bind(sku_sort as i64)
            .execute(e).await.map(crate::db::Done::from))?;
        }
    }
    tx.commit().await?;
    Ok(PRODUCTS.len())
}

/// Image names the demo catalogue refers to (each has `NAME.svg` and `NAME-2.svg` in
/// `public/images/products/`; a test checks they exist).
pub fn image_names() -> impl Iterator<Item = &'static str> {
    PRODUCTS.iter().map(|p| p.image)
}
